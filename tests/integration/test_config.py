"""`imsd check`, `imsd version` and configuration errors."""

import os
import re
import shutil
import tempfile
import unittest

from imsdtest import ImsdCase, free_port, run_cli

SPEC_KEYS = [
    "hostname", "listen", "submission_listen", "smtps_listen", "spool_dir", "mail_dir",
    "local_domains", "recipients_file", "relay_networks", "tls_cert_file", "tls_key_file",
    "tls_loopback", "auth_users_file", "message_size_limit", "recipient_limit",
    "max_connections", "max_connections_per_ip", "command_timeout", "data_timeout",
    "relayhost", "dns_servers", "smtp_port", "retry_min", "retry_max", "queue_lifetime",
    "delay_warning", "log_level",
]


class Check(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="imsd-test-check-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def conf(self, text, name="imsd.conf"):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def good_text(self):
        return ("# a comment\n\nhostname = mx.imsd.test\n"
                "listen = 127.0.0.1:%d\n"
                "spool_dir = %s/spool\nmail_dir = %s/mail\n"
                "local_domains = localhost, example.test\n"
                "message_size_limit = 2048   # trailing comment\n"
                "command_timeout = 90s\ndata_timeout = 5m\nqueue_lifetime = 5d\n"
                "relay_networks = 192.0.2.0/24 2001:db8::/32\n"
                "log_level = debug\n" % (free_port(), self.tmp, self.tmp))

    def check(self, path):
        p = run_cli(["check", "-c", path])
        return p.returncode, p.stdout + p.stderr

    def assertNamesLineAndKey(self, out, path, line, key):
        self.assertIn(key, out)
        self.assertTrue(re.search(r"%s:%d\b" % (re.escape(path), line), out),
                        "error should name %s:%d and the key %s; got:\n%s" % (path, line, key, out))

    def test_good_config_exits_0_and_prints_effective_settings(self):
        path = self.conf(self.good_text())
        rc, out = self.check(path)
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"message_size_limit\W+2048")
        self.assertRegex(out, r"hostname\W+mx\.imsd\.test")
        self.assertRegex(out, r"recipient_limit\W+1000", "defaults are shown too")
        missing = [k for k in SPEC_KEYS if not re.search(r"(?m)^\W*%s\b" % k, out)]
        self.assertEqual(missing, [], "every key of SPEC.md appears in the effective settings:\n"
                         + out)

    def test_check_does_not_start_serving_or_create_the_spool(self):
        path = self.conf(self.good_text())
        rc, out = self.check(path)
        self.assertEqual(rc, 0, out)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "mail", "localhost")))

    def test_bad_value_names_file_line_and_key_and_exits_1(self):
        cases = [
            ("message_size_limit", "lots"),
            ("message_size_limit", "-1"),
            ("recipient_limit", "0x"),
            ("command_timeout", "5x"),
            ("data_timeout", "soon"),
            ("log_level", "loud"),
            ("tls_loopback", "maybe"),
            ("listen", "nonsense"),
            ("listen", "127.0.0.1:99999"),
            ("relay_networks", "10.0.0.0/33"),
            ("max_connections", "many"),
            ("smtp_port", "70000"),
        ]
        for key, value in cases:
            with self.subTest(key=key, value=value):
                text = self.good_text() + "%s = %s\n" % (key, value)
                path = self.conf(text, "bad-%s.conf" % key)
                line = text.count("\n")
                rc, out = self.check(path)
                self.assertEqual(rc, 1, out)
                self.assertNamesLineAndKey(out, path, line, key)

    def test_unknown_key_is_an_error_naming_file_line_and_key(self):
        text = "hostname = mx.imsd.test\nmessage_size_limt = 100\nlog_level = info\n"
        path = self.conf(text)
        rc, out = self.check(path)
        self.assertEqual(rc, 1, out)
        self.assertNamesLineAndKey(out, path, 2, "message_size_limt")

    def test_line_without_equals_is_an_error(self):
        path = self.conf("hostname = a.test\nthis is not a setting\n")
        rc, out = self.check(path)
        self.assertEqual(rc, 1, out)
        self.assertIn("%s:2" % path, out)

    def test_missing_config_file_exits_1_and_names_it(self):
        path = os.path.join(self.tmp, "does-not-exist.conf")
        rc, out = self.check(path)
        self.assertEqual(rc, 1, out)
        self.assertIn(path, out)

    def test_unreadable_recipients_file_is_reported(self):
        text = self.good_text() + "recipients_file = %s/nope.txt\n" % self.tmp
        path = self.conf(text)
        rc, out = self.check(path)
        self.assertEqual(rc, 1, out)
        self.assertIn("recipients_file", out)

    def test_every_spec_key_is_in_effect_and_none_is_marked(self):
        # Every key of SPEC.md is built now: check marks none "not yet in effect".
        path = self.conf(self.good_text() + "relayhost = [192.0.2.1]:2525\ndelay_warning = 1h\n")
        rc, out = self.check(path)
        self.assertEqual(rc, 0, out)
        self.assertIn("relayhost = [192.0.2.1]:2525", out)
        self.assertNotIn("not yet in effect", out)

    def test_run_with_bad_config_exits_1(self):
        path = self.conf("message_size_limit = lots\n")
        p = run_cli(["run", "-c", path], timeout=15)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("message_size_limit", p.stdout + p.stderr)


class Version(unittest.TestCase):

    def test_version_prints_and_exits_0(self):
        p = run_cli(["version"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout + p.stderr, r"imsd")

    def test_unknown_subcommand_is_a_usage_error(self):
        p = run_cli(["frobnicate"])
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)


class RunWarnings(ImsdCase):

    def test_run_logs_no_not_yet_in_effect_warning_for_spec_keys(self):
        srv = self.server(relayhost="[192.0.2.1]:2525")
        srv.stop()
        warn = [l for l in srv.log_text().splitlines() if "not yet in effect" in l]
        self.assertEqual(warn, [])
