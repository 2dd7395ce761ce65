"""SMS and WhatsApp customer channels through Twilio.

The entry points are in :mod:`channels.twilio.plugin`; this package imports nothing
heavy, so validating a config never imports the Twilio SDK.
"""
