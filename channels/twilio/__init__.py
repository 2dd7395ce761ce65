"""SMS and WhatsApp customer channels through Twilio."""

from channels.twilio.adapter import TwilioChannel, make_client, mask
from channels.twilio.config import TWILIO_CHANNELS, TwilioConfig, parse_twilio

__all__ = [
    "TWILIO_CHANNELS",
    "TwilioChannel",
    "TwilioConfig",
    "make_client",
    "mask",
    "parse_twilio",
]
