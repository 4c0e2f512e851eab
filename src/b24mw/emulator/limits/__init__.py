"""The two Bitrix24 limits (leaky bucket, operating time) and the injected faults."""
