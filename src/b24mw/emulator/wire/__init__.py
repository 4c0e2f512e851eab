"""How Bitrix24 speaks: error envelopes, replies, PHP-style form keys, JSON bodies, dates."""
