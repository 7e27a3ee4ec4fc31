"""The demo's people: plausible Dutch names, made up from two lists and a seeded random.

Names only ever go into the people registry (rule 12); the demo's events carry ids.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from ledger.application import Ledger

FIRST_NAMES = (
    "Anouk", "Bram", "Daan", "Eva", "Fleur", "Gijs", "Hanneke", "Iris", "Jasper", "Joost",
    "Karin", "Lieke", "Lotte", "Maarten", "Marieke", "Mohamed", "Nadia", "Noor", "Pieter",
    "Priya", "Ruben", "Sanne", "Sem", "Sevda", "Thijs", "Tim", "Vera", "Wouter", "Yara",
    "Zoë", "Ahmed", "Bas", "Chantal", "Dewi", "Emre", "Femke", "Gerrit", "Hatice", "Inge",
    "Jeroen", "Kees", "Linda", "Mila", "Niels", "Oumaima", "Petra", "Rik", "Samira", "Tess",
    "Ugur", "Wilma", "Youssef",
)  # fmt: skip

SURNAMES = (
    "de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen",
    "Visser", "Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters",
    "Hendriks", "van Leeuwen", "Dekker", "Brouwer", "de Wit", "Dijkstra", "Smits",
    "de Graaf", "van der Meer", "van der Linden", "Kok", "Jacobs", "de Haan", "Vermeulen",
    "van den Heuvel", "van der Veen", "van den Broek", "de Bruijn", "Schouten", "Willems",
    "van Vliet", "Hoekstra", "Maas", "Verhoeven", "Koster", "Prins", "Yilmaz", "El Amrani",
    "Kaya", "Boukhari", "Tahiri", "Sahin", "Postma", "Kuipers",
)  # fmt: skip


def dutch_names(rng: random.Random, count: int, *, taken: set[str] | None = None) -> list[str]:
    """``count`` distinct full names, none of them in ``taken`` (which is extended).

    Distinct, so a test can look for every person's name in the events and never
    mistake one person for another.
    """
    taken = set() if taken is None else taken
    if count > len(FIRST_NAMES) * len(SURNAMES) - len(taken):
        raise ValueError(f"cannot make {count} distinct names from the lists")
    names: list[str] = []
    while len(names) < count:
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}"
        if name not in taken:
            taken.add(name)
            names.append(name)
    return names


def contact_for(name: str) -> str:
    """``zoe.van.dijk@example.org`` for "Zoë van Dijk": example.org never reaches anyone."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return ".".join(plain.lower().split()) + "@example.org"


# What members raise proposals about, now in one cooperative, now in another.
TOPICS = (
    "Buy eco-labelled products from now on", "Hold intervision every other week",
    "Everyone plans their own hours in the shared calendar",
    "Put two percent of every invoice aside for training", "A summer outing for all members",
    "Rotate who answers the shared phone line", "Try a four-day week next summer",
)  # fmt: skip


@dataclass
class Cast:
    """The story's people, registered in the ledger's people registry: ids from here on."""

    facilitator: UUID
    mentor: UUID
    employees: list[UUID]  # the company's 200
    youth_workers: list[UUID]  # youth workers and municipal staff, taken as the story needs

    @classmethod
    def register(cls, ledger: Ledger, rng: random.Random) -> Cast:
        def person(name: str) -> UUID:
            return ledger.register_person(name, contact_for(name)).id

        facilitator, mentor = person("Fatima Facilitator"), person("Mirjam Mentor")
        names = dutch_names(rng, 226, taken={"Fatima Facilitator", "Mirjam Mentor"})
        people = [person(name) for name in names]
        return cls(facilitator, mentor, people[:200], people[200:])
