"""Agent prompts as plain Python functions (rendered strictly, tested for distinct inputs)."""

from __future__ import annotations

from persona_lab.core.messages import Message, Transcript

TASK_INSTRUCTIONS = {
    "summarization": "Summarize the following document.",
    "email": "Write an email from the following notes.",
}

SYSTEM = "You are a helpful writing assistant. Reply with the requested text only."


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
        Message("system", "You infer writing preferences from a user's edits. Answer with a short phrase."),
        Message(
            "user",
            f"{body}\n\nWhat preference explains how the user edited these texts? "
            "Answer with a short comma-separated list of style properties, nothing else.",
        ),
    )


def aggregate_preferences_messages(preferences: list[str]) -> Transcript:
    """CIPHER-k (k > 1): merge the retrieved preferences into one short phrase."""
    if not preferences:
        raise ValueError("need at least one preference to aggregate")
    listed = "\n".join(f"- {p}" for p in preferences)
    return (
        Message("system", "You summarize a user's writing preferences. Answer with a short phrase."),
        Message(
            "user",
            f"These preferences were inferred from a user's edits on similar documents:\n{listed}\n\n"
            "Combine them into one short comma-separated list of the properties most of them share.",
        ),
    )
