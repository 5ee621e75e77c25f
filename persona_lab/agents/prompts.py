"""Agent prompts as plain Python functions (rendered strictly, tested for distinct inputs)."""

from __future__ import annotations

from persona_lab.core.messages import Message, Transcript

TASK_INSTRUCTIONS = {
    "summarization": "Summarize the following document.",
    "email": "Write an email from the following notes.",
}

SYSTEM = "You are a helpful writing assistant. Reply with the requested text only."


# CIPHER's inference and aggregation prompts. The old wording asked for "style properties", which an
# instruct (coder) model read as CSS ("font-weight, text-align"); these ask for how the text is written,
# in everyday words, and say what not to answer with. No example answers: a small model copies them,
# and they would name catalog preferences for it.
WRITING_ONLY = ("You describe how a person likes their texts written (their writing preferences), "
                "in plain everyday words.")
PLAIN_WORDS = ("Answer with a short comma-separated list of writing preferences in plain words, about length, "
               "tone, structure and wording. "
               "Describe the writing itself, not code, markup, fonts or page layout. Nothing else.")


def _check(task: str, document: str) -> None:
    if task not in TASK_INSTRUCTIONS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_INSTRUCTIONS)}")
    if not document.strip():
        raise ValueError("document must be non-empty")


def draft_messages(task: str, document: str, preference: str | None = None) -> Transcript:
    """The drafting prompt: the task, optionally a user preference to follow, and the document."""
    _check(task, document)
    pref = f"\nThe user's preference for this kind of text: {preference.strip()}\nFollow it." if preference and preference.strip() else ""
    return (
        Message("system", SYSTEM),
        Message("user", f"{TASK_INSTRUCTIONS[task]}{pref}\n\n<<<\n{document}\n>>>"),
    )


def icl_messages(task: str, document: str, examples: list[tuple[str, str]]) -> Transcript:
    """ICL-edit: past (original, revised) pairs shown before the new document."""
    _check(task, document)
    shots = "\n\n".join(
        f"Example {i}.\nYour earlier draft:\n<<<\n{orig}\n>>>\nThe user revised it to:\n<<<\n{rev}\n>>>"
        for i, (orig, rev) in enumerate(examples, start=1)
    )
    intro = "Here is how the user revised your earlier drafts. Write the new text the way the user wants it.\n\n" if examples else ""
    return (
        Message("system", SYSTEM),
        Message("user", f"{intro}{shots}\n\n{TASK_INSTRUCTIONS[task]}\n\n<<<\n{document}\n>>>".lstrip()),
    )


def infer_preference_messages(pairs: list[tuple[str, str]]) -> Transcript:
    """Infer the user's latent preference from (draft, edited) pairs (CIPHER, explore-exploit, continual)."""
    if not pairs:
        raise ValueError("need at least one (draft, edited) pair")
    body = "\n\n".join(
        f"Pair {i}.\nOriginal:\n<<<\n{a}\n>>>\nEdited by the user:\n<<<\n{b}\n>>>" for i, (a, b) in enumerate(pairs, 1)
    )
    return (
        Message("system", WRITING_ONLY),
        Message(
            "user",
            f"{body}\n\nHow does this user like their texts written, judging by these edits? "
            f"{PLAIN_WORDS}",
        ),
    )


def aggregate_preferences_messages(preferences: list[str]) -> Transcript:
    """CIPHER-k (k > 1): merge the retrieved preferences into one short phrase."""
    if not preferences:
        raise ValueError("need at least one preference to aggregate")
    listed = "\n".join(f"- {p}" for p in preferences)
    return (
        Message("system", WRITING_ONLY),
        Message(
            "user",
            f"These writing preferences were inferred from a user's edits on similar documents:\n{listed}\n\n"
            f"Which of them do most of these descriptions share? {PLAIN_WORDS}",
        ),
    )
