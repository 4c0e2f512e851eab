"""Customer chats from Bitrix24 open lines (issue 17): intake through the
CRM activity each session creates, a quota-aware poller, links to returns,
orders, deliveries and deals, and the read API (docs/support.md)."""
