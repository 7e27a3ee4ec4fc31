"""The domain's exceptions: one tree, so a caller knows what to catch.

Every refusal of a command is a ``RuleViolation``: the command recorded nothing.
Each error carries a stable ``code`` (the HTTP API sends it to clients) and,
where one input is at fault, the ``field`` that names it.

    LedgerError
    ├── RuleViolation                     a command would break a rule; nothing stored
    │   ├── InvalidInput                  a value is malformed (empty name, negative hours ...)
    │   ├── CooperativeFull               rule 1: more than the member cap
    │   ├── CapAboveMaximum               rule 1: a cap above 20
    │   ├── CapBelowMembership            rule 1: a cap below today's membership
    │   ├── AlreadyAMember
    │   ├── NotAMember                    the actor or a named person is not a member
    │   ├── NotEligibleToVote             rule 2: outside the proposal's electorate
    │   ├── NoMandate                     rule 3/6/10: acting without the authority it needs
    │   ├── MentorYearOver                rule 6: the mentor's authority has lapsed
    │   ├── MentorCannotBeMember          the mentor guides, does not vote
    │   ├── ManagerRoleDoesNotExist       rule 5: only mentor and coordinator exist
    │   ├── UnknownProposalKind
    │   ├── ProposalNotFound
    │   ├── ProposalClosed
    │   ├── ProposalStillOpen             closing before everyone voted or the deadline
    │   ├── SplitInvalid                  rule 8: a side of the split would be empty ...
    │   ├── WorkNotFound
    │   ├── NotYourWork                   rule 9: nobody acts on another member's work
    │   ├── NoHandoverPending
    │   ├── WorkClosed
    │   ├── NothingToInvoice              rule 10: no logged, uninvoiced hours
    │   ├── InvoiceNotFound
    │   ├── InvoiceSettled                paid in full or credited: never changed again
    │   └── PaymentExceedsOutstanding
    ├── CooperativeNotFound
    ├── PersonNotFound
    ├── ConcurrencyConflict               retries on a version conflict ran out
    ├── StaleVersion                      the caller expected another version
    ├── ChainBroken                       the stored history does not match its hash chain
    └── StoreNeedsMigration               the store was made by an earlier release

Outside that tree, as the store's own failures are: ``SaveOutcomeUnknown`` (the store went
away while a save was on its way; see there).
"""

from __future__ import annotations

from eventsourcing.persistence import OperationalError


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""

    code = "ledger_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class RuleViolation(LedgerError):
    """A command was refused because it would break a rule; nothing was recorded."""

    code = "rule_violation"


class InvalidInput(RuleViolation):
    code = "invalid_input"


class CooperativeFull(RuleViolation):
    code = "cooperative_full"


class CapAboveMaximum(RuleViolation):
    code = "cap_above_maximum"


class CapBelowMembership(RuleViolation):
    code = "cap_below_membership"


class AlreadyAMember(RuleViolation):
    code = "already_a_member"


class NotAMember(RuleViolation):
    code = "not_a_member"


class NotEligibleToVote(RuleViolation):
    code = "not_eligible_to_vote"


class NoMandate(RuleViolation):
    code = "no_mandate"


class MentorYearOver(NoMandate):
    code = "mentor_year_over"


class MentorCannotBeMember(RuleViolation):
    code = "mentor_cannot_be_member"


class ManagerRoleDoesNotExist(RuleViolation):
    code = "manager_role_does_not_exist"


class UnknownProposalKind(RuleViolation):
    code = "unknown_proposal_kind"


class ProposalNotFound(RuleViolation):
    code = "proposal_not_found"


class ProposalClosed(RuleViolation):
    code = "proposal_closed"


class ProposalStillOpen(RuleViolation):
    code = "proposal_still_open"


class SplitInvalid(RuleViolation):
    code = "split_invalid"


class WorkNotFound(RuleViolation):
    code = "work_not_found"


class NotYourWork(RuleViolation):
    code = "not_your_work"


class NoHandoverPending(RuleViolation):
    code = "no_handover_pending"


class WorkClosed(RuleViolation):
    code = "work_closed"


class NothingToInvoice(RuleViolation):
    code = "nothing_to_invoice"


class InvoiceNotFound(RuleViolation):
    code = "invoice_not_found"


class InvoiceSettled(RuleViolation):
    code = "invoice_settled"


class PaymentExceedsOutstanding(RuleViolation):
    code = "payment_exceeds_outstanding"


class CooperativeNotFound(LedgerError):
    code = "cooperative_not_found"


class PersonNotFound(LedgerError):
    code = "person_not_found"


class ConcurrencyConflict(LedgerError):
    code = "concurrency_conflict"


class StaleVersion(LedgerError):
    """The client's expected version (``If-Match``) is not the cooperative's current one."""

    code = "stale_version"


class ChainBroken(LedgerError):
    """The stored history does not match its hash chain: something was altered."""

    code = "chain_broken"


class StoreNeedsMigration(LedgerError):
    """The store's tables were made by an earlier release: run ``coop-ledger migrate``."""

    code = "store_needs_migration"


class SaveOutcomeUnknown(OperationalError):
    """The store went away while a save was on its way, and did not come back to say.

    The events may or may not have been recorded. Like any unreachable store this is a
    503; unlike it, a caller holding an idempotency key must keep the key claimed: a retry
    must not run the command a second time.
    """
