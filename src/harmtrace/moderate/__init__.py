"""moderate."""
