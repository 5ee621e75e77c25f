"""PrefEval-style tests of long-context preference following (Zhao et al., ICLR 2025).

Does an assistant still follow a preference the user stated (or revealed) early in a long
conversation? :func:`load_prefeval` reads a dataset in PrefEval's file layout,
:func:`build_context` lays out system prompt -> preference -> N filler pairs -> question, the
methods in :data:`METHODS` ask the question, :class:`LLMJudge` / :class:`ProgrammaticJudge` score
generations, and :class:`PrefEvalRunner` runs it all concurrently and resumably into a run
directory (``persona-lab prefeval``).
"""

from persona_lab.eval.metrics import cohen_kappa
from persona_lab.eval.prefeval.methods import METHODS, MethodOptions, PrefEvalMethod, create_method
from persona_lab.eval.prefeval.report import agreement, rebuild_outputs, summarize
from persona_lab.eval.prefeval.runner import PrefEvalConfig, PrefEvalRunner, request_messages
from persona_lab.simulators.prefeval.classification import CHANCE, parse_choice, shuffle_options
from persona_lab.simulators.prefeval.context import (
    DEFAULT_TURNS,
    ContextConfig,
    FinalUserMessage,
    PrefEvalContext,
    build_context,
    length_instruction,
)
from persona_lab.simulators.prefeval.data import (
    FORMS,
    Filler,
    PrefEvalDataset,
    PrefEvalItem,
    Problem,
    Verifiable,
    builtin_data_dir,
    filler_from_pairs,
    load_filler,
    load_prefeval,
)
from persona_lab.simulators.prefeval.judges import (
    ERROR_TYPES,
    GenerationVerdict,
    LLMJudge,
    ProgrammaticJudge,
    combine_checks,
    parse_yes_no,
)

__all__ = [
    "CHANCE",
    "DEFAULT_TURNS",
    "ERROR_TYPES",
    "FORMS",
    "METHODS",
    "ContextConfig",
    "Filler",
    "FinalUserMessage",
    "GenerationVerdict",
    "LLMJudge",
    "MethodOptions",
    "PrefEvalConfig",
    "PrefEvalContext",
    "PrefEvalDataset",
    "PrefEvalItem",
    "PrefEvalMethod",
    "PrefEvalRunner",
    "Problem",
    "ProgrammaticJudge",
    "Verifiable",
    "agreement",
    "build_context",
    "builtin_data_dir",
    "cohen_kappa",
    "combine_checks",
    "create_method",
    "filler_from_pairs",
    "length_instruction",
    "load_filler",
    "load_prefeval",
    "parse_choice",
    "parse_yes_no",
    "rebuild_outputs",
    "request_messages",
    "shuffle_options",
    "summarize",
]
