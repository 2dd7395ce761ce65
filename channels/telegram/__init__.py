"""Telegram customer channel (aiogram 3): webhook or long polling."""

from channels.telegram.adapter import TelegramChannel
from channels.telegram.config import TelegramConfig, parse_telegram

__all__ = ["TelegramChannel", "TelegramConfig", "parse_telegram"]
