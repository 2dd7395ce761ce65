"""The engine's own customer-facing texts, in every locale Escala speaks.

Flow and KB texts live in their admin-edited files; these are the few sentences the
engine itself says (handoff confirmation, status, CSAT ...). Placeholders use
``str.format`` names; values are inserted as plain text, never re-interpreted.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.models import DEFAULT_LOCALE, Choice

TEXTS: Mapping[str, Mapping[str, str]] = {
    "handoff": {
        "pt-BR": (
            "Abri o chamado {ticket}, código {code}, para você. Ele está na fila {tier} e o primeiro retorno "
            "deve chegar {sla}. Pode continuar escrevendo por aqui: tudo fica "
            "registrado no chamado."
        ),
        "en": (
            "I've opened ticket {ticket}, code {code}, for you. It's in the {tier} queue and you should "
            "hear back {sla}. Feel free to keep writing here: everything is added "
            "to the ticket."
        ),
    },
    "handoff_closed_hours": {
        "pt-BR": "Estamos fora do horário de atendimento agora: abrimos {opens}; retorno até {due}.",
        "en": "We're outside business hours right now: we open {opens}; you'll hear back by {due}.",
    },
    "private_data": {
        "pt-BR": (
            "Por segurança, não envie números de cartão, senhas ou dados de saúde por aqui. "
            "Um atendente vai falar com você por um canal privado."
        ),
        "en": (
            "For your security, please don't send card numbers, passwords or health data "
            "here. An agent will reach you through a private channel."
        ),
    },
    "suggest": {
        "pt-BR": "Não tenho certeza se entendi. Você quis dizer:",
        "en": "I'm not sure I understood. Did you mean:",
    },
    "none_of_these": {"pt-BR": "Nenhuma dessas", "en": "None of these"},
    # A KB answer written in another language than the customer's (issue 19).
    "answer_in_language": {
        "pt-BR": "Esta resposta só está disponível em {language}:",
        "en": "This answer is only available in {language}:",
    },
    "not_understood": {
        "pt-BR": (
            "Desculpe, não entendi. Pode escrever de outro jeito? Se preferir, digite "
            '"atendente" para falar com uma pessoa.'
        ),
        "en": (
            "Sorry, I didn't get that. Could you put it another way? You can also type "
            '"human" to talk to a person.'
        ),
    },
    "cancelled": {
        "pt-BR": "Tudo bem, cancelei. Como posso ajudar?",
        "en": "Okay, cancelled. How can I help?",
    },
    "nothing_to_cancel": {
        "pt-BR": "Não há nada em andamento para cancelar. Como posso ajudar?",
        "en": "There's nothing in progress to cancel. How can I help?",
    },
    "status_queued": {
        "pt-BR": (
            "Chamado {ticket}: aguardando na fila {tier}, posição {position} de {depth}. "
            "Primeiro retorno previsto {sla}."
        ),
        "en": (
            "Ticket {ticket}: waiting in the {tier} queue, position {position} of {depth}. "
            "Expected first response {sla}."
        ),
    },
    "status_assigned": {
        "pt-BR": "Chamado {ticket}: em atendimento com a equipe {tier}.",
        "en": "Ticket {ticket}: being handled by the {tier} team.",
    },
    "status_resolved": {
        "pt-BR": "Chamado {ticket}: resolvido.",
        "en": "Ticket {ticket}: resolved.",
    },
    "status_not_found": {
        "pt-BR": "Não encontrei o chamado {ticket}. Confira o número e tente de novo.",
        "en": "I couldn't find ticket {ticket}. Please check the number and try again.",
    },
    "status_none": {
        "pt-BR": (
            "Você não tem chamado aberto nesta conversa. Se tiver o número, escreva "
            '"status" seguido dele (por exemplo: status 1042).'
        ),
        "en": (
            "You have no open ticket in this conversation. If you have its number, type "
            '"status" followed by it (for example: status 1042).'
        ),
    },
    "escalated": {
        "pt-BR": (
            "Seu chamado {ticket} foi encaminhado para a equipe especializada {tier}. "
            "Um especialista vai continuar o atendimento; retorno previsto {sla}."
        ),
        "en": (
            "Your ticket {ticket} has been passed to our {tier} specialist team. A "
            "specialist will follow up; expected response {sla}."
        ),
    },
    "routed": {
        "pt-BR": (
            "Seu chamado {ticket} foi encaminhado para a equipe {tier}; retorno previsto {sla}."
        ),
        "en": "Your ticket {ticket} has been passed to our {tier} team; expected response {sla}.",
    },
    "released": {
        "pt-BR": "Seu chamado {ticket} voltou para a fila {tier}; logo outro atendente assume.",
        "en": "Your ticket {ticket} is back in the {tier} queue; another agent will pick it up.",
    },
    "resolved": {
        "pt-BR": "Seu chamado {ticket} foi resolvido. Obrigado pelo contato!",
        "en": "Your ticket {ticket} has been resolved. Thanks for reaching out!",
    },
    "csat_question": {
        "pt-BR": "De 1 a 5, quanto você ficou satisfeito com o atendimento?",
        "en": "From 1 to 5, how satisfied are you with the support you received?",
    },
    "csat_retry": {
        "pt-BR": "Por favor, responda com um número de 1 (muito insatisfeito) a 5 (muito satisfeito).",
        "en": "Please answer with a number from 1 (very unsatisfied) to 5 (very satisfied).",
    },
    "csat_thanks": {
        "pt-BR": "Obrigado pela sua avaliação!",
        "en": "Thank you for your feedback!",
    },
    "agent_reply": {"pt-BR": "{agent}: {text}", "en": "{agent}: {text}"},
    "keyword_help": {
        "pt-BR": (
            'Atendimento por mensagem. Escreva sua dúvida, ou "atendente" para falar com '
            "uma pessoa. Para não receber mais mensagens, responda SAIR; para voltar, VOLTAR."
        ),
        "en": (
            'Customer support by message. Type your question, or "human" to talk to a '
            "person. Reply STOP to stop receiving messages, START to resume."
        ),
    },
    "opted_in": {
        "pt-BR": "Pronto, você voltará a receber nossas mensagens.",
        "en": "Done, you will receive our messages again.",
    },
    "unsupported_media": {
        "pt-BR": "Por enquanto eu só entendo mensagens de texto. Pode descrever por escrito?",
        "en": "For now I only understand text messages. Could you describe it in writing?",
    },
}

CSAT_LABELS: Mapping[str, Mapping[int, str]] = {
    "pt-BR": {1: "1 😞", 2: "2", 3: "3", 4: "4", 5: "5 😄"},
    "en": {1: "1 😞", 2: "2", 3: "3", 4: "4", 5: "5 😄"},
}

#: The id prefix of a CSAT answer button: ``csat:5``.
CSAT_CHOICE = "csat:"


def csat_choices(locale: str) -> tuple[Choice, ...]:
    """The 1–5 answers to the satisfaction question, as buttons (or numbered lines)."""
    labels = CSAT_LABELS.get(locale) or CSAT_LABELS["en"]
    return tuple(Choice(f"{CSAT_CHOICE}{score}", labels[score]) for score in range(1, 6))


def text(key: str, locale: str, **values: Any) -> str:
    """The text ``key`` in ``locale`` (falling back to the default locale), filled in."""
    variants = TEXTS[key]
    template = variants.get(locale) or variants[DEFAULT_LOCALE]
    return template.format(**values) if values else template


#: Language names, per customer locale, for :func:`language_name`.
LANGUAGE_NAMES: Mapping[str, Mapping[str, str]] = {
    "pt-BR": {"pt": "português", "en": "inglês", "es": "espanhol"},
    "en": {"pt": "Portuguese", "en": "English", "es": "Spanish"},
}


def language_name(locale: str, of: str) -> str:
    """The name of the language of locale ``of``, in the customer's ``locale``."""
    names = LANGUAGE_NAMES.get(locale) or LANGUAGE_NAMES[DEFAULT_LOCALE]
    code = of.split("-", 1)[0].lower()
    return names.get(code, of)


def in_language(answer: str, answer_locale: str | None, locale: str) -> str:
    """``answer`` as the customer gets it: said to be in another language when its
    locale is not the customer's language."""
    if answer_locale is None or answer_locale.split("-")[0].lower() == locale.split("-")[0].lower():
        return answer
    note = text("answer_in_language", locale, language=language_name(locale, answer_locale))
    return f"{note}\n{answer}"


def duration(minutes: int, locale: str) -> str:
    """A human duration: ``15 minutos`` / ``2 hours``."""
    pt = locale == "pt-BR"
    if minutes % (24 * 60) == 0:
        days = minutes // (24 * 60)
        return f"{days} {'dia' if pt else 'day'}{'s' if days != 1 else ''}"
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} {'hora' if pt else 'hour'}{'s' if hours != 1 else ''}"
    return f"{minutes} {'minuto' if pt else 'minute'}{'s' if minutes != 1 else ''}"


WEEKDAYS: Mapping[str, tuple[str, ...]] = {
    "pt-BR": ("segunda", "terça", "quarta", "quinta", "sexta", "sábado", "domingo"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}


def within(minutes: int, locale: str) -> str:
    """A promise counted from now: ``em até 15 minutos`` / ``within 15 minutes``."""
    return f"{'em até' if locale == 'pt-BR' else 'within'} {duration(minutes, locale)}"


def clock_time(when: datetime, locale: str) -> str:
    """``8h``, ``8h15`` / ``8 am``, ``8:15 pm`` (``when`` in the zone to show)."""
    if locale == "pt-BR":
        return f"{when.hour}h{when.minute:02d}" if when.minute else f"{when.hour}h"
    hour = when.hour % 12 or 12
    suffix = "am" if when.hour < 12 else "pm"
    return f"{hour}:{when.minute:02d} {suffix}" if when.minute else f"{hour} {suffix}"


def moment(when: datetime, now: datetime, locale: str) -> str:
    """A moment as a customer reads it, relative to ``now`` (both in the zone to show):
    ``8h15`` (the same day), ``amanhã às 8h``, ``segunda às 8h10``, ``28/12 às 9h``."""
    days = (when.date() - now.date()).days
    time = clock_time(when, locale)
    pt = locale == "pt-BR"
    if days == 0:
        return time
    at = "às" if pt else "at"
    if days == 1:
        return f"{'amanhã' if pt else 'tomorrow'} {at} {time}"
    if days < 7:
        names = WEEKDAYS.get(locale) or WEEKDAYS["en"]
        return f"{names[when.weekday()]} {at} {time}"
    day = f"{when.day:02d}/{when.month:02d}" if pt else f"{when:%b} {when.day}"
    return f"{day} {at} {time}"


def by(when: datetime, now: datetime, locale: str) -> str:
    """A deadline: ``até segunda às 8h10`` / ``by Monday at 8:10 am``."""
    text = moment(when, now, locale)
    if when.date() == now.date():
        text = f"{'hoje às' if locale == 'pt-BR' else 'today at'} {text}"
    return f"{'até' if locale == 'pt-BR' else 'by'} {text}"
