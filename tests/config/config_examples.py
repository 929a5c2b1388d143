"""The docs/semantics.md §6 example configuration, as text, for the configuration tests."""

DOC_EXAMPLE = r'''
[[connectors]]
name = "Support"
service = "other"
username = "support@acme.example"
password_env = "SUPPORT_PASSWORD"
primary_address = "support@acme.example"
use_for = "both"
incoming = { protocol = "imap", host = "mail.acme.example", port = 993, security = "ssl" }
outgoing = { host = "mail.acme.example", port = 587, security = "starttls", auth = "username-password" }

[[connectors]]
name = "Relay"
service = "office365-smtp-relay"
primary_address = "noreply@acme.example"
use_for = "outgoing"
outgoing = { host = "acme-example.mail.protection.outlook.com", auth = "none" }

[[routes]]
connector = "Support"
name = "Invoices from Globex"
address = "support@acme.example"
target = { customer = "Globex", contract = "2026", service = "Finance", process = "Invoice query", kind = "case" }
send_automated_emails = true
rules = { senders = "*globex.example", attachment_types = ".pdf; .xlsx" }

[[routes]]
connector = "Support"
name = "Urgent"
address = "support@acme.example"
target = { customer = "Acme", contract = "Internal", service = "IT", process = "Incident", kind = "ticket" }
ticket_category = "Urgent"
rules = { subject_keywords = "urgent; outage" }

[[fallbacks]]
connector = "Support"
address = "support@acme.example"
target = { customer = "Acme", contract = "Internal", service = "IT", process = "General", kind = "ticket" }
send_automated_emails = false
test_mode = false

[companies]
"Globex Corporation" = ["*globex.example", "ceo.globex@gmail.com"]

[[blocked]]
address = "*spam.example"
action = "reject"

[linking]
subject_pattern = '\[REF:(?P<ref>[A-Z]-\d+)\]'
plus_addressing = "off"
search_body = false
'''
