"""The patterns of instruction-like text the guard withholds, written against the folded
view (``reasonrag.reason.folding.fold``): lower case, no accents, one apostrophe.

Patterns keep each language's own spelling: their non-ASCII characters are folded exactly
as text is (so ``précédentes`` matches ``precedentes``, and Russian words match whatever
their Cyrillic look-alike letters fold to).

A rule is a lead phrase (plain words, alternatives separated by ``|``) and the pattern
that follows it. Every match holds one word of its lead, the rule's anchor, and a rule is
searched for only in text holding one of its anchors: searching every pattern over every
snippet would cost several times the guard's time budget.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from reasonrag.reason.folding import fold, fold_char

_WORD = re.compile(r"\w+")
_IDEOGRAPHS = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    anchors: frozenset[str]
    """Words one of which any match holds; empty for rules searched everywhere."""
    turn: bool
    """A fake turn boundary (the end of the documents, a role marker, a step of the agent's
    protocol): what follows belongs to the attacker up to the end of the text. Otherwise an
    instruction: its sentence and the rest of its paragraph are withheld."""


def _fold_pattern(source: str) -> str:
    return "".join(c if c.isascii() else fold_char(c) for c in source)


def _phrases(*slots: str) -> tuple[str, ...]:
    """Every phrase taking one ``|``-separated alternative per slot."""
    return tuple(" ".join(words) for words in itertools.product(*(s.split("|") for s in slots)))


_COMMON = frozenset(
    _phrases(
        "a|an|and|are|de|des|di|do|du|el|en|es|if|is|l|la|le|les|los|las|me|no|not|now|o|of|on|"
        "qu|que|se|t|the|to|von|you"
    )
)
"""Words too frequent to be good anchors (a lead of nothing else still gets one)."""


def _anchor(phrase: str) -> str:
    words = _WORD.findall(fold(phrase))
    return max(words, key=lambda w: (w not in _COMMON, len(w)))


def _rule(
    lead: str | Sequence[str], rest: str = r"\b", *, at: str = r"\b", turn: bool = False
) -> Rule:
    """A rule matching ``at``, a ``lead`` phrase (words apart by any whitespace), ``rest``."""
    phrases = lead.split("|") if isinstance(lead, str) else list(lead)
    leads = "|".join(r"\s+".join(re.escape(w) for w in fold(p).split()) for p in phrases)
    pattern = re.compile(_fold_pattern(f"{at}(?:{leads}){rest}"), re.MULTILINE)
    return Rule(pattern, frozenset(_anchor(p) for p in phrases), turn)


_SENTENCE_START = r"(?:^|(?<=[.!?:;]\s)|(?<=[.!?]['\")\]»]\s)|(?<=。))[ \t]*"
_GAP = r"[^.!?\n]{0,40}?"
"""A few words of the same sentence."""

# --- English ---------------------------------------------------------------------------------
_SPEAK = "answer|reply|respond|say|output|write|print|state|return|repeat|type|claim|tell"
_EARLIER = (
    "(?:previous|prior|above|earlier|preceding|foregoing|former|original|initial|old|"
    "existing|current|given|your|system|these|those|other)"
)
_ORDERS = (
    r"(?:instructions?|prompts?|rules|directions?|guidelines?|guidance|commands?|orders|"
    r"directives?|constraints|programming|context|messages?|text|tasks?)"
)
_STRICT_ORDERS = r"(?:instructions?|prompts?|directives?|guidelines|programming)"
_DICTATED = r"(?:with\b|only\b|exactly\b|nothing\s+but\b|['\"«]|[^\s.!?,;]+\s*(?:[.!?;]|$))"
"""What follows a verb that dictates a word: "with ...", "only ...", a quote, or one word
ending the sentence."""
_TOLD = (
    r"(?:\byou\s+(?:were|have\s+been|'ve\s+been|had\s+been|got|are)\s+"
    r"(?:told|given|instructed|asked|taught|programmed|shown|trained)\b"
    r"|\b(?:above|so\s+far|until\s+now|up\s+to\s+now|before\s+this)\b)"
)

_ENGLISH = (
    # "ignore (all) the previous ... instructions", "disregard everything you were told"
    _rule(
        (
            *_phrases(
                "ignore|disregard|forget|override|overrule|discard|drop|abandon|bypass|dismiss|"
                "scrap|skip|neglect|set aside|throw out|throw away|pay no attention to|never mind|"
                "stop following|stop obeying"
            ),
            *_phrases("do not|don't|dont|never", "follow|obey|heed"),
        ),
        r"\s+(?:"
        rf"(?:(?:all|any|of|the|every|each)\s+)*{_EARLIER}\b{_GAP}\b{_ORDERS}\b"
        rf"|(?:all|any)\s+(?:of\s+)?(?:the\s+|your\s+)?{_STRICT_ORDERS}\b"
        r"|(?:(?:all|any)\s+(?:of\s+)?)?the\s+(?:\w+\s+){0,2}?(?:above|foregoing)\b(?!\s*\d)"
        rf"|(?:everything|all|anything|whatever|what)\b[^.!?\n]{{0,30}}?{_TOLD})",
    ),
    # "the instructions above are void"
    _rule(
        "instruction|instructions|prompt|prompts|directive|directives|guidelines|programming",
        r"(?:\s+above|\s+given\s+\w+)?\s+(?:are|is)\s+(?:now\s+|hereby\s+)?"
        r"(?:void|null|cancel+ed|revoked|obsolete|invalid|superseded|"
        r"no\s+longer\s+(?:valid|apply|applicable|in\s+effect))\b",
    ),
    # a fake header ("System prompt: ..."); the phrase alone is common in text about models
    _rule("system|developer", r"\s+(?:prompt|message|instructions?)\s*:"),
    # "new task:", "your real instructions are"
    _rule(
        "new|updated|revised|real|actual|true|secret|hidden|additional",
        r"\s+(?:instructions?|task|directives?|orders|objective|goal|prompt)\s*:",
    ),
    _rule(
        "your",
        r"\s+(?:new|real|actual|true|updated|only|current|revised|secret)\s+"
        r"(?:instructions?|task|job|goal|purpose|orders|directives?|mission|role|objective)\s+"
        r"(?:is|are|now|follow)\b",
    ),
    # "you must now answer", "from now on, respond with"
    _rule(
        "you",
        r"\s+(?:must|should|will|shall|are\s+to|have\s+to|need\s+to|'ll|may\s+only|can\s+only|"
        r"are\s+(?:required|expected|instructed|told)\s+to)\s+(?:(?:always|just|simply)\s+)*"
        # "now" or "only" before the verb, or a dictated word after it: "You must answer all
        # questions" and "you should always reply within a week" are advice.
        r"(?:(?:now|only|henceforth|instead)\s+(?:(?:always|just|simply|only)\s+)*"
        rf"(?:{_SPEAK})\b|(?:{_SPEAK})\s+{_DICTATED})",
    ),
    _rule(
        "from now on|from this point on|from this moment on|henceforth|hereafter|going forward|"
        "starting now|starting immediately",
        r"(?:wards?)?\b[\s,]*(?:you\s+(?:will\s+|must\s+|shall\s+|should\s+|are\s+to\s+)?)?"
        rf"(?:(?:only|always|just)\s+)*(?:{_SPEAK}|call|refer|act|behave|pretend|speak|ignore|"
        r"use|treat)\b",
    ),
    # personas
    _rule(
        "you are now",
        r"\s+(?:an?\s|the\s|my\s|no\s+longer\b|free\b|unrestricted|unfiltered|allowed|"
        r"authori[sz]ed|required|in\s+\w+\s+mode|acting\b|going\s+to\b|called\b|named\b)",
    ),
    _rule("pretend", r"\s+(?:that\s+)?(?:you\s+are|you're)\b"),
    _rule("let's pretend|role-play as|role play as|roleplay as"),
    _rule("imagine|suppose", r"\s+(?:that\s+)?you\s+are\s+(?:an?\s+)?(?:ai|assistant|model|bot)\b"),
    # the answer dictated
    _rule(
        _phrases("the", "correct|right|true|real|only|actual|final|official", "answer"),
        r"\s+(?:is|will\s+be)\b[^.!?\n]{0,60}?"
        r"\b(?:say|write|reply|respond|output|print|answer|repeat|state|tell|use|give)\b",
    ),
    _rule("only|sole", r"\s+(?:acceptable|valid|permitted|allowed|correct)\s+(?:answer|reply)\b"),
    _rule(
        f"{_SPEAK}|replies|answers|responds|says",
        # a few words between, none an adverb: "reply promptly to all questions" is service
        r"\s+(?:(?!to\b|\w+ly\b)[^\s.!?,;]+\s+){1,3}?(?:to|for)\s+(?:every|any|all|each)\s+"
        r"(?:single\s+)?"
        r"(?:question|query|prompt)s?\b",
    ),
    _rule(
        "whatever|no matter what",
        r"\s+(?:the\s+)?(?:question|user|query|you(?:'re|\s+are)\s+asked)\b(?!\s+of\b)",
    ),
    _rule("regardless of", r"\s+(?:the|what\s+the|any)\s+(?:question|user|query)\b(?!\s+of\b)"),
    _rule(
        "if you are asked|if you're asked|if you get asked|if anyone asks|if someone asks|"
        "if the user asks|if a user asks",
        rf"\b[^.!?\n]{{0,60}}?\b(?:{_SPEAK})\b",
    ),
    # the documents disowned, the reader addressed
    _rule(
        _phrases("instead of", "using|reading|consulting|following"),
        r"\s+(?:the\s+|these\s+)?(?:documents?|context|sources?|text|evidence|passages?|"
        r"search\s+results)\b",
    ),
    _rule(
        _phrases("do not|don't|dont|never", "use|trust|consult|cite"),
        r"\s+(?:the\s+|these\s+|any\s+)?(?:documents?|context|search\s+results|passages?)\b",
    ),
    _rule(
        _phrases("note|message|instruction|instructions|reminder|notice", "to|for"),
        r"\s+(?:the\s+|any\s+|all\s+)?(?:ai|assistant|llm|chatbot|language\s+models?|ai\s+models?)\b",
    ),
)

# A bare imperative counts only at the start of a sentence, and only when it dictates a
# word ("Say Zebulon.", "Respond only with ...") rather than opens an instruction to a
# reader ("Answer the questions on the form", "Say what you will").
_OPENING = _SENTENCE_START + r"(?:(?:please|kindly|now|just|simply|always|only|instead)\s*,?\s+)*"
_OPENINGS = (
    _rule(
        "answer|reply|respond|say",
        r"(?:\s+(?:(?:with|only|just|exactly|simply)\s+)?(?:the\s+(?:single\s+)?(?:word|name)\s+)?"
        r"['\"«]?\s*[^\s.!?,;'\"»]+\s*['\"»]?\s*(?:[.!?,;]|$|(?:and|instead|only|please)\b)"
        r"|\s+(?:(?:only|always|just|simply|exactly)\s+)*with\b)",
        at=_OPENING,
    ),
    _rule(
        "output|print|write|return|type|repeat|state",
        r"\s+(?:(?:only|just|exactly)\s+)?(?:the\s+(?:single\s+)?(?:word|name|phrase|string)\b|['\"«])",
        at=_OPENING,
    ),
    _rule("act as|behave as|pose as|pretend|role-play|role play|roleplay", at=_OPENING),
)

# --- French, German, Spanish, Italian, Portuguese, Russian, Dutch ----------------------------
_FR_ORDERS = (
    r"(?:instructions?|consignes?|règles|directives?|ordres|indications|commandes|prompts?)"
)
_FR_EARLIER = (
    r"(?:précédent\w*|antérieur\w*|ci-dessus|d'avant|initiales?|d'origine|originales?|"
    r"du\s+système|reçues|données)"
)
_FR_SPEAK = (
    r"(?:réponds|répondez|répondre|répondras|répondrez|dis|dites|dire|écris|écrivez|écrire|"
    r"affiche[zr]?)"
)
_FRENCH = (
    _rule(
        (
            *_phrases(
                "ignore|ignorez|ignorer|ignores|oublie|oubliez|oublier|oublies|annule|annulez"
            ),
            *_phrases("ne", "tiens|tenez", "pas|plus", "compte", "des|de|du"),
            *_phrases("fais|faites", "abstraction", "des|de|du"),
            *_phrases("laisse|laissez", "de côté"),
        ),
        r"\s+(?:(?:toutes|tous|les|vos|tes|ces|mes|la|le|l')\s*)*"
        rf"(?:{_FR_EARLIER}\s+{_FR_ORDERS}|{_FR_ORDERS}\s+{_FR_EARLIER})",
    ),
    _rule(
        _phrases("ignorez|oubliez|oublie|ignore", "tout ce"),
        r"\s+(?:qu'\s*(?:on|l'on)\s+(?:t'a|vous\s+a|t'ont|vous\s+ont)|que\s+(?:tu\s+as|vous\s+avez)"
        r"|qui\s+précède)",
    ),
    _rule(
        "désormais|dorénavant|à partir de maintenant|dès maintenant",
        r"\b[\s,]*(?:tu\s+|vous\s+)?(?:dois\s+|devez\s+|vas\s+|allez\s+)?"
        rf"(?:(?:uniquement|seulement|toujours)\s+)?{_FR_SPEAK}\b",
    ),
    _rule("réponds|répondez", r"\s+(?:uniquement|seulement|toujours|simplement)\b"),
    _rule(
        "nouvelle|nouvelles|nouveau|nouveaux",
        r"\s+(?:instructions?|consignes?|tâches?|directives?)\s*:",
    ),
    _rule(
        "tu es|vous êtes",
        r"\s+(?:maintenant|désormais|à\s+présent)\s+(?:un|une|le|la|mon|ma)\b",
    ),
    _rule(
        _phrases("la", "bonne|vraie|seule", "réponse est"), rf"\b[^.!?\n]{{0,60}}?\b{_FR_SPEAK}\b"
    ),
)
_GERMAN = (
    _rule(
        "ignoriere|ignorier|ignorieren sie|vergiss|vergessen sie|missachte|missachten sie|"
        "übergehe|übergehen sie|verwirf|verwerfen sie",
        r"\s+(?:(?:alle|sämtliche|die|deine|ihre|jegliche)\s+)*"
        r"(?:vorherigen|vorigen|bisherigen|obigen|früheren|vorangegangenen|vorangehenden|"
        r"ursprünglichen|alten|deine|ihre|alle)\s+"
        r"(?:anweisungen|instruktionen|befehle|regeln|vorgaben|anordnungen|richtlinien|"
        r"prompts?|hinweise)",
    ),
    _rule(
        "vergiss alles|vergessen sie alles",
        r"\b[^.!?\n]{0,40}?\b(?:gesagt|mitgeteilt|aufgetragen|befohlen|bisher|zuvor|vorher|oben)\b",
    ),
    _rule(
        "ab jetzt|von nun an|ab sofort|ab heute",
        r"\b[\s,]*(?:(?:du|sie|nur|immer|bitte)\s+)*(?:antworte|antwortest|antworten\s+sie|sage?|"
        r"sagst|schreibe?|schreibst|gib|gibst|nenne?|nennst)\b",
    ),
    _rule(
        "antworte|antworten sie|antwortest du",
        r"\s+(?:ab\s+jetzt\s+)?(?:nur|immer|ausschließlich|stets|lediglich)\b",
    ),
    _rule("neue", r"\s+(?:anweisungen|aufgabe|instruktionen|befehle|regeln)\s*:"),
    _rule("du bist", r"\s+(?:jetzt|nun|ab\s+sofort)\s+(?:ein|eine|der|die|das|mein|meine)\b"),
)
_ES_SPEAK = (
    r"(?:responde|contesta|di|escribe|responda|conteste|diga|escriba|respondes|contestas|"
    r"responderás|contestarás)"
)
_SPANISH = (
    _rule(
        (
            *_phrases(
                "ignora|ignore|ignoren|ignorad|olvida|olvide|olviden|olvidad|descarta|descarte|"
                "omite|omita|desestima|no tengas en cuenta"
            ),
            *_phrases("no hagas caso|haz caso omiso", "a|de"),
        ),
        r"\s+(?:(?:todas|todos|las|los|tus|sus|estas|esas)\s+)*"
        r"(?:instrucciones|instrucción|indicaciones|reglas|órdenes|directrices|normas|"
        r"consignas)\s+"
        r"(?:anteriores|previas|de\s+arriba|originales|iniciales|del\s+sistema|precedentes|"
        r"recibidas|dadas)",
    ),
    _rule(
        _phrases("olvida|olvide|olviden", "todo lo"),
        r"\s+(?:anterior|que\s+(?:te|se\s+te|le|les)\s+"
        r"(?:han|ha|hayan|dijeron|dijo|habían|indicaron))\b",
    ),
    _rule(
        "a partir de ahora|de ahora en adelante|desde ahora",
        rf"\b[\s,]*(?:(?:tú|usted|solo|sólo|siempre|solamente)\s+)*{_ES_SPEAK}\b",
    ),
    _rule(
        "responde|contesta|responda|conteste",
        r"\s+(?:solo|solamente|únicamente|siempre|exclusivamente)\b",
    ),
    _rule("nueva|nuevas", r"\s+(?:instrucciones|tarea|órdenes|reglas)\s*:"),
    _rule("ahora eres|eres ahora"),
)
_ITALIAN = (
    _rule(
        "ignora|ignori|ignorate|dimentica|dimentichi|dimenticate|trascura|trascurate|tralascia|"
        "non tenere conto delle|non tenere conto di|non considerare",
        r"\s+(?:(?:tutte|tutti|le|gli|i|tue|sue|queste)\s+)*"
        r"(?:istruzioni|regole|indicazioni|direttive|consegne|ordini)\s+"
        r"(?:precedenti|anteriori|di\s+sopra|sopra|originali|iniziali|del\s+sistema|ricevute|"
        r"date)",
    ),
    _rule(
        _phrases("dimentica|dimenticate|dimentichi", "tutto"),
        r"\s+(?:quello|ciò|quanto)\s+che\s+(?:ti|vi|le|gli)\s+"
        r"(?:è\s+stato|sono\s+state|hanno|abbiamo)\b",
    ),
    _rule(
        (*_phrases("d'ora|da ora", "in", "poi|avanti"), "da adesso", "d'ora innanzi"),
        r"(?:\s+in\s+poi)?\b[\s,]*(?:(?:tu|lei|solo|sempre|soltanto)\s+)*"
        r"(?:rispondi|risponda|rispondete|scrivi|scriva)\b",
    ),
    _rule(
        "rispondi|risponda|rispondete",
        r"\s+(?:solo|soltanto|sempre|unicamente|esclusivamente)\b",
    ),
    _rule("nuove istruzioni|nuovo compito", r"\s*:"),
    _rule("ora sei|adesso sei", r"\s+(?:un|una|il|la|lo)\b"),
)
_PORTUGUESE = (
    _rule(
        "ignore|ignora|ignorem|esqueça|esquece|esqueçam|desconsidere|desconsidera|descarte|"
        "descarta|despreze|não siga|não sigas|não obedeça",
        r"\s+(?:(?:todas|todos|as|os|suas|tuas|estas|essas)\s+)*"
        r"(?:instruções|regras|ordens|orientações|diretrizes|indicações|comandos)\s+"
        r"(?:anteriores|prévias|acima|originais|iniciais|do\s+sistema|recebidas|dadas)",
    ),
    _rule(
        _phrases("esqueça|esquece|esqueçam", "tudo"),
        r"\s+(?:o\s+)?que\s+(?:te|lhe|vos|lhes|você)\s+"
        r"(?:foi\s+dito|disseram|disse|falaram|ensinaram)\b",
    ),
    _rule(
        (
            "a partir de agora",
            "de agora em diante",
            *_phrases("daqui", "em|para", "diante|frente"),
        ),
        # formal imperatives only: "responde", "diz" are also "the paper says"
        r"\b[\s,]*(?:(?:você|tu|apenas|sempre|somente|só)\s+)*(?:responda|diga|escreva)\b",
    ),
    _rule("responda|responde", r"\s+(?:apenas|somente|sempre|só|unicamente)\b"),
    _rule("nova|novas", r"\s+(?:instruções|tarefa|ordens)\s*:"),
)
_RUSSIAN = (
    _rule(
        "игнорируй|игнорируйте|проигнорируй|проигнорируйте|забудь|забудьте|"
        "не обращай внимания на|не обращайте внимания на|отбрось|отбросьте|отмени|отмените",
        r"\s+(?:(?:все|всё|свои|ваши|твои)\s+)*"
        r"(?:предыдущие|прошлые|прежние|вышеуказанные|вышеприведённые|предшествующие|"
        r"системные|исходные|изначальные|данные\s+ранее|свои|ваши|твои|все)\s+"
        r"(?:инструкции|указания|правила|команды|распоряжения|установки|промпт\w*)",
    ),
    _rule(
        "забудь всё|забудьте всё",
        r"\b[^.!?\n]{0,30}?\b(?:говорили|сказали|сказано|велели|выше|раньше|до\s+этого)\b",
    ),
    _rule(
        "отныне|с этого момента|теперь|впредь|с сегодняшнего дня",
        r"\b[\s,]*(?:ты\s+|вы\s+)?(?:\w+\s+)?"
        r"(?:отвечай|отвечайте|говори|говорите|пиши|пишите|скажи|скажите)\b",
    ),
    _rule("отвечай|отвечайте", r"\s+(?:только|всегда|лишь|исключительно)\b"),
    _rule(
        (*_phrases("новые", "инструкции|указания|правила|задачи"), "новое задание"),
        r"\s*:",
    ),
)
_DUTCH = (
    _rule(
        "negeer|vergeet",
        r"\s+(?:(?:alle|de|je|uw)\s+)*"
        r"(?:vorige|eerdere|voorgaande|bovenstaande|oorspronkelijke|oude)\s+"
        r"(?:instructies|instructie|regels|opdrachten|aanwijzingen)\b",
    ),
    _rule("vanaf nu", r"\b[\s,]*(?:(?:je|jij|u|alleen|altijd)\s+)*(?:antwoord|zeg|schrijf)\b"),
)

# --- Chinese (simplified and traditional) and Japanese ---------------------------------------
# Written without spaces, hence without word boundaries or anchors: searched in any text
# that holds ideographs.
_CJK_SOURCE = "|".join(
    (
        r"(?:忽略|忽视|忽視|无视|無視|不要理会|不要理會|别理会|不用理会|忘记|忘記|忘掉|抛开|拋開|"
        r"丢弃|放弃)(?:掉)?(?:你|您)?"
        r"(?:之前|以前|先前|此前|上面|上述|前面|原来|原來|原先|原有|所有|全部|一切|系统|系統)"
        r"[^。！？\n]{0,10}?(?:指令|指示|说明|說明|规则|規則|要求|命令|提示|设定|設定)",
        r"(?:从现在开始|從現在開始|从现在起|從現在起|从今以后|從今以後|今后|今後)[，,\s]*"
        r"(?:你|您)?(?:只|只能|必须|必須|一律|都|永远|永遠)?(?:回答|回复|回覆|输出|輸出|说|說|答)",
        r"(?:请|請|你|您)(?:只|仅|僅)(?:能|需|要)?(?:回答|回复|回覆|输出|輸出|说|說)",
        r"新(?:的)?(?:指令|指示|任务|任務)[:：]",
        r"(?:你现在是|你現在是|现在你是|現在你是)",
        r"正确答案是[^。\n]{0,30}?(?:说|回答|输出)",
        r"(?:指示|指令|命令|ルール|規則|設定)(?:を|は)?(?:すべて|全て|全部)?(?:無視|忘れ)",
    )
)
_CJK = Rule(re.compile(_fold_pattern(_CJK_SOURCE)), frozenset(), turn=False)

# --- fake turn boundaries --------------------------------------------------------------------
_TAGS = (
    r"(?:documents?|context|search_results|retrieved(?:_text)?|sources?|think|answer|system|"
    r"user|assistant|instructions?|prompt)"
)
_MARKERS_SOURCE = "|".join(
    (
        rf"</?\s*{_TAGS}\s*>",
        r"<\|[a-z_]+\|>",  # <|im_start|>, <|system|>, <|eot_id|>, ...
        r"<(?:start|end)_of_turn>",
        r"\[/?inst\]",
        r"<</?sys>>",
        r"\[/?(?:system|assistant|user)\]",
        r"\{\s*[\"']function[\"']",  # an action of the agent's protocol
        r"[\[(<*=#~-]\s*end\s+of\s+(?:the\s+)?(?:documents?|context|search\s+results|data|"
        r"sources?|retrieved\s+(?:text|documents?))\b",
    )
)
# No anchors: every alternative starts with punctuation, which the regex engine skips fast.
_MARKERS = Rule(re.compile(_MARKERS_SOURCE), frozenset(), turn=True)
_LINE = r"^[ \t]*"
_HEADING = _LINE + r"#{1,6}[ \t]*"
_TURNS = (
    _rule(
        (
            *_phrases("end of", "documents|document|context|search results|retrieved"),
            *_phrases("end of the", "documents|context"),
        ),
        at=_LINE,
        turn=True,
    ),
    _rule(
        "system|assistant|user",
        r"(?:[ \t]+(?:prompt|message))?[ \t]*:?[ \t]*$",
        at=_HEADING,
        turn=True,
    ),
    _rule("instruction|response|input", r"[ \t]*:", at=_HEADING, turn=True),
    _rule("system|assistant|user|human", r"[ \t]*:", at=_LINE, turn=True),
    _rule("thought|action|observation|final answer", r"\s*:", at=_SENTENCE_START, turn=True),
)


def _by_anchor(rules: Sequence[Rule]) -> dict[str, tuple[Rule, ...]]:
    index: dict[str, list[Rule]] = {}
    for rule in rules:
        for word in rule.anchors:
            index.setdefault(word, []).append(rule)
    return {word: tuple(found) for word, found in index.items()}


RULES: tuple[Rule, ...] = (
    *_ENGLISH, *_OPENINGS, *_FRENCH, *_GERMAN, *_SPANISH, *_ITALIAN, *_PORTUGUESE, *_RUSSIAN,
    *_DUTCH, _CJK, _MARKERS, *_TURNS,
)  # fmt: skip
_BY_ANCHOR = _by_anchor([r for r in RULES if r.anchors])


def rules_for(view: str) -> list[Rule]:
    """The rules that can match the folded ``view``: those whose anchor it holds, the CJK
    rule when it holds ideographs, and the turn markers."""
    words = set(_WORD.findall(view)) & _BY_ANCHOR.keys()
    chosen = {rule: None for word in sorted(words) for rule in _BY_ANCHOR[word]}
    if not view.isascii() and _IDEOGRAPHS.search(view):
        chosen[_CJK] = None
    return [*chosen, _MARKERS]
