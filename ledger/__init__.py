"""coop-ledger's write side: the Cooperative aggregate and the Ledger application.

from ledger import Ledger, FoundingMember
ledger = Ledger()              # store from COOP_LEDGER_DATABASE_URL
ana = ledger.register_person("Ana", "ana@example.org")
"""

from ledger.application import CommandResult, Ledger, RecordedEvent, utc_now
from ledger.cooperative import Cooperative
from ledger.errors import LedgerError, RuleViolation
from ledger.rules import DecisionMode, DecisionRules, Outcome, ProposalKind, VoteChoice
from ledger.state import FoundingMember, SplitPlan
from ledger.storage import StoreConfig

__all__ = [
    "CommandResult",
    "Cooperative",
    "DecisionMode",
    "DecisionRules",
    "FoundingMember",
    "Ledger",
    "LedgerError",
    "Outcome",
    "ProposalKind",
    "RecordedEvent",
    "RuleViolation",
    "SplitPlan",
    "StoreConfig",
    "VoteChoice",
    "utc_now",
]
