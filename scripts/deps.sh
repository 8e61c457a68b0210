#!/bin/sh
# Install what imsd needs from Debian's packages, when it is missing.
#
#   scripts/deps.sh build   what building and running need (make run): compiler, headers
#   scripts/deps.sh deb     that, plus what builds and checks the Debian package (make deb)
#   scripts/deps.sh test    that, plus the tools and peers the tests and benchmarks talk to
#                           (make test, make bench): Postfix, dnsmasq, HAProxy, swaks, clang,
#                           the DKIM/SPF verifiers imsd did not write (dkimpy, pyspf,
#                           OpenDKIM's opendkim-testmsg), the programs that send through
#                           sendmail (bsd-mailx, git send-email), and what builds and checks
#                           the package and the man pages (dpkg-dev, debhelper, lintian,
#                           mandoc, mmdebstrap, systemd-nspawn to boot it), Prometheus (promtool and a scraping
#                           server for the metrics tests), systemd (systemd-analyze checks
#                           the unit offline; nothing is started) and the base tools the
#                           tests call that a minimal root may lack (mount, useradd, git),
#                           Dovecot (core, IMAP, LMTP, Sieve: the mailbox server the
#                           Dovecot tests start privately), and the mail filters the filter
#                           tests start privately: rspamd, OpenDKIM, ClamAV's clamd and
#                           clamav-milter, postgrey, and python3-milter (pymilter) for the
#                           scripted milters.
#                           A test that finds a tool missing fails (tests/run.py): add the
#                           tool here when a test starts calling it.
#
# `make run` never installs a test peer: on a machine whose MTA is Exim, apt would replace it
# with Postfix. Run as root on a fresh Debian 12; as another user it only says what is missing.
set -e

what=${1:-test}

# name of a command or header to test : Debian package that provides it
need="
/usr/include/openssl/ssl.h:libssl-dev
/usr/include/ares.h:libc-ares-dev
/usr/include/crypt.h:libcrypt-dev
/usr/include/opendkim/dkim.h:libopendkim-dev
/usr/include/spf2/spf.h:libspf2-dev
/usr/include/opendmarc/dmarc.h:libopendmarc-dev
/usr/include/libpsl.h:libpsl-dev
/usr/include/idn2.h:libidn2-dev
/usr/include/uninorm.h:libunistring-dev
/usr/include/systemd/sd-daemon.h:libsystemd-dev
/usr/share/publicsuffix/public_suffix_list.dat:publicsuffix
/usr/bin/cc:gcc
/usr/bin/make:make
/usr/bin/openssl:openssl
"
if [ "$what" = test ]; then
	need="$need
/usr/bin/clang:clang
/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a:libclang-rt-14-dev
/usr/bin/python3:python3
/usr/bin/swaks:swaks
/usr/sbin/smtp-source:postfix
/usr/sbin/dnsmasq:dnsmasq-base
/usr/sbin/haproxy:haproxy
/usr/sbin/ip:iproute2
/usr/lib/python3/dist-packages/dkim/__init__.py:python3-dkim
/usr/lib/python3/dist-packages/spf.py:python3-spf
/usr/lib/python3/dist-packages/nacl/__init__.py:python3-nacl
/usr/lib/python3/dist-packages/dns/resolver.py:python3-dnspython
/usr/sbin/opendkim-testmsg:opendkim-tools
/usr/bin/promtool:prometheus
/usr/sbin/dovecot:dovecot-core
/usr/lib/dovecot/imap:dovecot-imapd
/usr/lib/dovecot/lmtp:dovecot-lmtpd
/usr/lib/dovecot/modules/lib90_sieve_plugin.so:dovecot-sieve
/usr/bin/bsd-mailx:bsd-mailx
/usr/lib/git-core/git-send-email:git-email
/usr/share/perl5/Mail/Address.pm:libmailtools-perl
/usr/bin/mandoc:mandoc
/usr/bin/dpkg-buildpackage:dpkg-dev
/usr/bin/dh:debhelper
/usr/bin/fakeroot:fakeroot
/usr/bin/lintian:lintian
/usr/bin/mmdebstrap:mmdebstrap
/usr/bin/systemd-nspawn:systemd-container
/usr/bin/systemd-analyze:systemd
/usr/bin/git:git
/bin/mount:mount
/usr/sbin/useradd:passwd
/usr/bin/rspamd:rspamd
/usr/sbin/opendkim:opendkim
/usr/sbin/clamd:clamav-daemon
/usr/sbin/clamav-milter:clamav-milter
/usr/sbin/postgrey:postgrey
/usr/lib/python3/dist-packages/Milter/__init__.py:python3-milter
"
elif [ "$what" = deb ]; then
	need="$need
/usr/bin/dpkg-buildpackage:dpkg-dev
/usr/bin/dh:debhelper
/usr/bin/fakeroot:fakeroot
/usr/bin/lintian:lintian
"
elif [ "$what" != build ]; then
	echo "usage: scripts/deps.sh build|test|deb" >&2
	exit 1
fi

missing=""
for item in $need; do
	path=${item%%:*}
	pkg=${item##*:}
	case "$path" in
	*libclang_rt.fuzzer*)
		# any clang version's fuzzer runtime will do
		ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 && continue ;;
	esac
	[ -e "$path" ] || missing="$missing $pkg"
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "imsd ($what) needs these Debian packages:$missing" >&2
	echo "install them as root: apt-get install$missing" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null || true
# postfix is only a test peer and a source of smtp-source/smtp-sink: keep it from starting
# a system instance on port 25.
if echo "$missing" | grep -q postfix; then
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
fi
# Dovecot is only a test peer too: its package would start a system instance (IMAP on 143,
# /run/dovecot). So would the mail filters (rspamd on 11332-11334, opendkim, clamd and
# freshclam, which fetches ClamAV's signatures from the network, clamav-milter, postgrey):
# each test starts its own with its own configuration. Refuse service starts for this install
# (policy-rc.d, which invoke-rc.d and deb-systemd-invoke obey) when no policy is in place
# already, and disable them afterwards.
services=""
for s in dovecot rspamd opendkim clamav-daemon clamav-milter postgrey; do
	case " $missing " in *" $s "*|*" $s-core "*) services="$services $s" ;; esac
done
own_policy=""
if [ -n "$services" ] && [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\n# scripts/deps.sh: no service starts while test peers install\nexit 101\n' \
		>/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	own_policy=yes
fi
rc=0
apt-get install -y -q --no-install-recommends $missing || rc=$?
[ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d
[ "$rc" = 0 ] || exit "$rc"
for s in $services; do
	units="$s.service"
	[ "$s" = dovecot ] && units="dovecot.service dovecot.socket"
	[ "$s" = clamav-daemon ] && units="clamav-daemon.service clamav-daemon.socket clamav-freshclam.service"
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		systemctl disable --now $units >/dev/null 2>&1 || true
	elif command -v update-rc.d >/dev/null 2>&1; then
		for u in $units; do
			update-rc.d "${u%.*}" disable >/dev/null 2>&1 || true
		done
	fi
done
# prometheus is only a test tool (promtool, and a server the metrics test starts on
# loopback): the package's own service would scrape and listen on :9090 for nothing.
if echo "$missing" | grep -q prometheus && command -v systemctl >/dev/null 2>&1 &&
	[ -d /run/systemd/system ]; then
	systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
