#!/bin/sh
# imsd vs Postfix on this machine: the entry point of `make bench` (after `make deps all`).
#
#   bench/run.sh [bench.py options]      e.g. --reps 1 --seconds 1 --skip memory,tls
#
# Needs root (a private Postfix instance, smtp-sink dropping privileges to nobody). Installs
# what is missing from Debian's packages, builds the load generator bench/smtpload.c into a
# temporary directory, and runs bench/bench.py, which prints the table and writes it to
# bench/results-latest.txt. Everything it starts listens on 127.0.0.1 only and is stopped at
# the end; the temporary directories are removed.
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "bench/run.sh: run as root (it starts a private Postfix instance)" >&2
	exit 1
fi

# command or file : Debian package
need="
/usr/sbin/smtp-source:postfix
/usr/sbin/smtp-sink:postfix
/usr/sbin/postfix:postfix
/usr/bin/valgrind:valgrind
/usr/bin/callgrind_annotate:valgrind
/usr/bin/openssl:openssl
/usr/bin/python3:python3
/usr/bin/cc:gcc
/usr/include/openssl/ssl.h:libssl-dev
"
missing=""
for item in $need; do
	path=${item%%:*}
	pkg=${item##*:}
	[ -e "$path" ] && continue
	case " $missing " in *" $pkg "*) ;; *) missing="$missing $pkg" ;; esac
done
if [ -n "$missing" ]; then
	echo "bench: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	# Postfix is only a peer here: "No configuration" keeps a system instance from starting.
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	apt-get update -q >/dev/null || true
	apt-get install -y -q --no-install-recommends $missing
fi

[ -x build/imsd ] || { echo "bench: build/imsd missing; run make first" >&2; exit 1; }

work=$(mktemp -d /tmp/imsd-bench-bin.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
cc -O2 -Wall -Wextra -o "$work/smtpload" bench/smtpload.c -lssl -lcrypto -lpthread

# 10,000 idle sessions need as many descriptors in imsd and in the client
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

start=$(date +%s)
status=0
python3 bench/bench.py --imsd build/imsd --smtpload "$work/smtpload" \
	--out bench/results-latest.txt "$@" || status=$?
# what DKIM signing and the SPF/DKIM/DMARC checks cost (in a network namespace)
python3 bench/authbench.py --imsd build/imsd --smtpload "$work/smtpload" \
	--out bench/results-auth.txt || status=$?
# delivery to Dovecot: imsd's own Maildir, imsd over LMTP, Postfix over LMTP (one Dovecot)
python3 bench/dovecotbench.py --imsd build/imsd --smtpload "$work/smtpload" \
	--out bench/results-dovecot.txt || status=$?
echo "bench: $(($(date +%s) - start)) s; tables in bench/results-latest.txt, bench/results-auth.txt, bench/results-dovecot.txt"
exit $status
