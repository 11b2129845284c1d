"""Operators' mistakes, each with its exact message: configuration files
(``MISTAKES``) and rule files (``EXPECTED``, for the files in ``BAD``). The
readers' tests and the reload tests (the daemon keeps its last good set) share them."""

from __future__ import annotations

from pathlib import Path

BAD = Path(__file__).parent / "data" / "rules_bad"

# fixture name -> the problems it must produce, after "path:".
EXPECTED: dict[str, list[str]] = {
    "unknown_key": ["5:1: unknown key 'fuzy' (did you mean 'fuzzy'?)"],
    "unknown_term_key": ["8:5: terms[1]: unknown key 'neer' (did you mean 'near'?)"],
    "wrong_type": ["5:8: terms: expected a list, found the text 'Caspian Pipeline Consortium'"],
    "wrong_type_number": ["5:8: fuzzy: expected a number from 50 to 100, found the text 'high'"],
    "empty_terms": ["5:8: terms: must not be empty"],
    "empty_require_terms": ["9:12: require[0].terms: must not be empty"],
    "fuzzy_out_of_range": ["5:8: fuzzy: 120 is out of range (expected a number from 50 to 100)"],
    "within_out_of_range": [
        "9:13: require[0].within: 0 is out of range (expected a whole number from 1 to 200)"],
    "unknown_severity": ["4:11: severity: unknown severity 'hgh' (did you mean 'high'? "
                         "expected one of low, medium, high, critical)"],
    "invalid_pattern": ["6:5: terms[0]: invalid term 'pipe*line': '*' may only end a word"],
    "regex_pattern": ["6:5: terms[0]: invalid term '(CPC|KTK) terminal': '(' is not allowed "
                      "in a term (write one term per entry; '*' at the end of a word is the "
                      "only wildcard)"],
    "short_prefix": ["6:5: terms[0]: invalid term 'oi*': the prefix 'oi*' is too short "
                     "(at least 3 letters before '*')"],
    "tab_indent": ["6:1: invalid YAML: a tab character; indent with spaces only"],
    "unclosed_quote": ["2:8: invalid YAML: this quote is never closed"],
    "duplicate_key": ["7:1: duplicate key 'terms' (first at line 5)"],
    "missing_required": ["1:1: missing required key 'title'"],
    "within_without_near": ["7:13: terms[0].within: needs 'near' (the terms that must occur "
                            "within that many words)"],
    "bad_id": ["1:5: id: 'CPC Disruption' must be lower-case letters, digits and '-', "
               "starting with a letter or digit"],
    "unknown_field": ["5:17: fields[1]: unknown field 'sumary' (did you mean 'summary'? "
                      "expected title, summary or content)"],
    "duplicate_term": ["7:5: terms[1]: duplicate term 'Baku Tbilisi Ceyhan' (also at line 6)"],
    "not_a_mapping": ["1:1: expected a mapping of keys (id, title, description, severity, "
                      "fields, fuzzy, terms, require, exclude), found a list"],
    "not_utf8": ["6: is not UTF-8 text"],
    "several_problems": [
        "5:8: fuzzy: 30 is out of range (expected a number from 50 to 100)",
        "8:5: terms[1]: invalid term '*barley': '*' must directly follow a word",
        "11:5: exclude[0]: unknown key 'whithin' (did you mean 'within'?)",
    ],
}

# One case per mistake: (file text, the exact message). Line numbers are those
# of the key (or table) at fault in the text.
MISTAKES = {
    "duration_in_words": ('[[feeds]]\nurl = "https://a.example/rss"\n'
                          '[[feeds]]\nurl = "https://b.example/rss"\ninterval = "5 minutes"\n',
                          'bad.toml:5: feeds[1].interval: "5 minutes" is not a duration '
                          'such as 5m'),
    "unknown_key": ('[poll]\nintervall = "5m"\n',
                    "bad.toml:2: poll.intervall: unknown key (did you mean 'interval'?)"),
    "unknown_section": ('[smpt]\nhost = "x"\n',
                        "bad.toml:1: smpt: unknown key (did you mean 'smtp'?)"),
    "wrong_type": ('[poll]\nconcurrency = "32"\n',
                   "bad.toml:2: poll.concurrency: '32' is not an integer"),
    "out_of_range": ('[poll]\nconcurrency = 0\n',
                     "bad.toml:2: poll.concurrency: 0 is out of range 1-1024"),
    "inline_secret": ('[smtp]\nhost = "localhost"\npassword = "hunter2"\n',
                      "bad.toml:3: smtp.password: secrets are given as env:NAME or file:PATH, "
                      "never inline"),
    "bad_security": ('[smtp]\nsecurity = "ssl"\n',
                     "bad.toml:2: smtp.security: 'ssl' is not one of none, starttls, tls"),
    "bad_cron": ('[[desks]]\nname = "energy"\nschedule = "0 7 * *"\n',
                 "bad.toml:3: desks.energy.schedule: '0 7 * *' is not a cron expression: it "
                 "needs 5 fields (minute hour day month weekday), it has 4"),
    "cron_out_of_range": ('[[desks]]\nname = "energy"\nschedule = "0 25 * * *"\n',
                          "bad.toml:3: desks.energy.schedule: cron field hour '25' is out of "
                          "range 0-23"),
    "unknown_timezone": ('[[desks]]\nname = "energy"\ntimezone = "Asia/Almati"\n',
                         "bad.toml:3: desks.energy.timezone: unknown time zone 'Asia/Almati' "
                         "(did you mean 'Asia/Almaty'?)"),
    "misspelt_timezone": ('[[desks]]\nname = "energy"\ntimezone = "Europe/Moskow"\n',
                          "bad.toml:3: desks.energy.timezone: unknown time zone 'Europe/Moskow' "
                          "(did you mean 'Europe/Moscow'?)"),
    "no_such_timezone": ('[[desks]]\nname = "energy"\ntimezone = "Nowhere"\n',
                         "bad.toml:3: desks.energy.timezone: unknown time zone 'Nowhere' (use a "
                         "name such as Asia/Almaty)"),
    "desk_table_typo": ('[[feeds]]\nurl = "https://a.example/rss"\n\n[[desk]]\nname = "energy"\n',
                        "bad.toml:4: desk: unknown key (did you mean 'desks'?)"),
    "dotted_table_typo": ('[poll]\ninterval = "5m"\n[desk.energy]\nname = "energy"\n',
                          "bad.toml:3: desk: unknown key (did you mean 'desks'?)"),
    "unnamed_desk": ('[[desks]]\nrules = ["*"]\n',
                     "bad.toml:1: desks[0]: a desk needs a name of letters, digits, '-', '_' "
                     "or '.'"),
    "duplicate_desk": ('[[desks]]\nname = "energy"\n[[desks]]\nname = "energy"\n',
                       "bad.toml:4: desks[1].name: duplicate desk name 'energy' (also "
                       "desks.energy)"),
    "dotted_desk_name": ('[[desks]]\nname = "energy.eu"\nshedule = "0 7 * * *"\n',
                         "bad.toml:3: desks.\"energy.eu\".shedule: unknown key (did you mean "
                         "'schedule'?)"),
    "storage_not_supported": ('[storage]\nurl = "mysql://news:hunter2@db.example/news"\n',
                              "bad.toml:2: storage.url: 'mysql://news:***@db.example/news' is not "
                              "a SQLite or PostgreSQL URL (sqlite:///PATH, "
                              "postgresql://USER@HOST/DB)"),
    "feed_scheme": ('[[feeds]]\nurl = "htp://a.example/rss"\n',
                    "bad.toml:2: feeds[0].url: 'htp://a.example/rss' is neither an http(s) URL "
                    "nor a file path (did you mean 'http'?)"),
    "metrics_port": ('[metrics]\nlisten = "127.0.0.1:99999"\n',
                     "bad.toml:2: metrics.listen: '127.0.0.1:99999': port 99999 is out of range "
                     "1-65535"),
    "metrics_port_zero": ('[metrics]\nlisten = "127.0.0.1:0"\n',
                          "bad.toml:2: metrics.listen: '127.0.0.1:0': port 0 is out of range "
                          "1-65535"),
    "metrics_host": ('[metrics]\nlisten = "127.0.0.300:9464"\n',
                     "bad.toml:2: metrics.listen: '127.0.0.300:9464': 127.0.0.300 is not an IPv4 "
                     "address"),
    "metrics_host_name": ('[metrics]\nlisten = "local host:9464"\n',
                          "bad.toml:2: metrics.listen: 'local host:9464': 'local host' is not a "
                          "host name or an IP address"),
    "metrics_ipv6_brackets": ('[metrics]\nlisten = "::1:9464"\n',
                              "bad.toml:2: metrics.listen: '::1:9464': write an IPv6 address in "
                              "brackets, such as [::1]:9464"),
    "unknown_severity": ('[[desks]]\nname = "energy"\nalert_min_severity = "urgent"\n',
                         "bad.toml:3: desks.energy.alert_min_severity: 'urgent' is not one of low, "
                         "medium, high, critical"),
    "email_without_smtp": ('[[desks]]\nname = "energy"\nemail = ["a@example.org"]\n',
                           "bad.toml:3: desks.energy.email: a desk with email needs an [smtp] "
                           "table"),
    "duplicate_feed": ('[[feeds]]\nurl = "https://a.example/rss"\n'
                       '[[feeds]]\nurl = "https://a.example/rss"\n',
                       "bad.toml:4: feeds[1].url: duplicate of feeds[0]"),
    "feed_without_url": ('[[feeds]]\nname = "A"\n', "bad.toml:1: feeds[0]: url is required"),
    "duplicate_key": ('[poll]\ninterval = "5m"\ninterval = "10m"\n',
                      "bad.toml:3:17: invalid TOML: Cannot overwrite a value (a key or table is "
                      "given twice)"),
    "unclosed_quote": ('[poll]\ninterval = "5m\n',
                       "bad.toml:2:15: invalid TOML: Illegal character '\\n'"),
    "alert_channel_not_configured": (
        '[[desks]]\nname = "energy"\nwebhook_url = "https://hooks.example/x"\n'
        'alert_min_severity = "high"\nalert_channels = ["slak"]\n',
        "bad.toml:5: desks.energy.alert_channels: 'slak' is not a channel of this desk (its "
        "channels: webhook)"),
    "alert_channel_typo": (
        '[[desks]]\nname = "energy"\nwebhook_url = "https://hooks.example/x"\n'
        'alert_min_severity = "high"\nalert_channels = ["webhok"]\n',
        "bad.toml:5: desks.energy.alert_channels: 'webhok' is not a channel of this desk (did you "
        "mean 'webhook'?)"),
    "alert_channels_without_severity": (
        '[[desks]]\nname = "energy"\nwebhook_url = "https://hooks.example/x"\n'
        'alert_channels = ["webhook"]\n',
        "bad.toml:4: desks.energy.alert_channels: has no effect without alert_min_severity (which "
        "hits to alert)"),
    "bad_quiet_hours": ('[[desks]]\nname = "energy"\nquiet_hours = "22-7"\n',
                        "bad.toml:3: desks.energy.quiet_hours: '22-7' is not a range such as "
                        "22:00-07:00"),
}
