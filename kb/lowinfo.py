"""Low-information texts: messages that say too little to be answered from the KB.

"no", "sim", "?", "ok", a single emoji, "oi de novo": a matcher scores them like any
text, and a short text shares its one word with many phrasings, so it can look like a
confident answer ("no" once answered with the delivery time at 86.6; issue 12). Such a
text is never answered from the KB, whatever its score: the caller asks the customer to
say more instead.

A text is low-information when, folded, it has no letter or digit at all, or every word
is a stop word or one of ``LOW_INFO_WORDS`` (yes/no and their slang, fillers, greetings,
"again", "help" without a topic). A single domain word ("boleto") is not: it names what
the customer wants.
"""

from __future__ import annotations

from kb.normalize import STOP_WORDS, fold


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Folded words that carry no topic on their own, in pt-BR and English.
LOW_INFO_WORDS = _words(
    """
    sim s nao n no not nope nah yes y yeah yep yup ye ok okay okey oks blz beleza
    certo certeza ta to entendi entendo claro talvez maybe sure right alright fine
    hmm hm hmmm hum humm ah ahn eh oh uh uhm huh ue opa epa eita ops oops
    oi ola oie hello hi hey hii alo bom boa dia tarde noite morning evening afternoon
    novo novamente denovo again back voltei voltando
    ajuda ajudar help duvida duvidas pergunta question problema problem coisa thing
    isso esse essa aquilo that this it what que como hein qual quais
    e ai eai
    """
)


def is_low_information(text: str) -> bool:
    """Whether ``text`` says too little to be answered from the KB (see module doc)."""
    words = fold(text).split()
    if not words:
        return True
    return all(w in LOW_INFO_WORDS or w in STOP_WORDS for w in words)
