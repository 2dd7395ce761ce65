"""Telegram customer channel (aiogram 3): webhook or long polling.

The entry point is :mod:`channels.telegram.plugin`; this package imports nothing
heavy, so validating a config never imports aiogram.
"""
