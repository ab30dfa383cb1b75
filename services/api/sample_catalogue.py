"""The demo page's sample: a few hundred invented films and the feedback of sample users.

Generated, not stored: the same input always gives the same catalogue, so there is no data
file to keep in step with this code and nothing copied from a licensed dataset. Large enough
that a user who likes a genre does not run out of unseen films of it after a few clicks
(the 64 films of the first sample did, and the list seemed to move away from the likes).
"""

from __future__ import annotations

from functools import cache
from itertools import product
from typing import TypedDict

# Per genre: words that make its invented titles ("The Silent Harbour").
VOCABULARY: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Drama": (
        ("Silent", "Quiet", "Distant", "Broken", "Patient", "Last"),
        ("Harbour", "Winter", "Letters", "Daughter", "Orchard", "Promise", "Kitchen"),
    ),
    "Comedy": (
        ("Accidental", "Borrowed", "Clumsy", "Lucky", "Noisy", "Upside-Down"),
        ("Wedding", "Neighbours", "Holiday", "Inheritance", "Parrot", "Caravan", "Diet"),
    ),
    "Thriller": (
        ("Hidden", "Twelfth", "Cold", "Final", "Vanishing", "Midnight"),
        ("Witness", "Signal", "Alibi", "Passenger", "Ledger", "Corridor", "Exit"),
    ),
    "Sci-Fi": (
        ("Orbital", "Quantum", "Hollow", "Second", "Infinite", "Red"),
        ("Colony", "Horizon", "Machine", "Station", "Frontier", "Signal", "Moon"),
    ),
    "Romance": (
        ("Summer", "Paper", "Secret", "Tender", "Faraway", "Sweet"),
        ("Promise", "Postcards", "Garden", "Serenade", "Balcony", "Vows", "Heart"),
    ),
    "Horror": (
        ("Crawling", "Pale", "Hungry", "Drowned", "Whispering", "Black"),
        ("Cellar", "Chapel", "Doll", "Forest", "Well", "Attic", "Mask"),
    ),
    "Animation": (
        ("Tiny", "Brave", "Paper", "Flying", "Woolly", "Clockwork"),
        ("Dragon", "Robot", "Fox", "Lantern", "Kite", "Submarine", "Penguin"),
    ),
    "Documentary": (
        ("Deep", "Wild", "Forgotten", "Great", "Frozen", "Urban"),
        ("Rivers", "Bees", "Glaciers", "Markets", "Railways", "Coral", "Islands"),
    ),
}
GENRES = tuple(VOCABULARY)
FILMS_PER_GENRE = 40
# Every third film has a second genre (the next one in GENRES), as real catalogues do.
SECOND_GENRE_EVERY = 3
USERS_PER_GENRE = 10
LIKES_PER_USER = 30
DISLIKES_PER_USER = 2


class Item(TypedDict):
    item_id: str
    title: str
    genres: list[str]


class Feedback(TypedDict):
    user_id: str
    item_ids: list[str]
    actions: list[str]


class Sample(TypedDict):
    description: str
    items: list[Item]
    feedback: list[Feedback]


def _titles(genre: str) -> list[str]:
    """FILMS_PER_GENRE distinct titles, spread over the word pairs (not all one adjective)."""
    adjectives, nouns = VOCABULARY[genre]
    pairs = sorted(product(range(len(adjectives)), range(len(nouns))), key=lambda p: (p[1], p[0]))
    chosen = pairs[:: max(1, len(pairs) // FILMS_PER_GENRE)][:FILMS_PER_GENRE]
    return [f"The {adjectives[a]} {nouns[n]}" for a, n in chosen]


def items() -> list[Item]:
    """The catalogue, genres interleaved so that no page is one genre by id order."""
    by_genre = {genre: _titles(genre) for genre in GENRES}
    result: list[Item] = []
    for n in range(FILMS_PER_GENRE):
        for g, genre in enumerate(GENRES):
            genres = [genre]
            if n % SECOND_GENRE_EVERY == SECOND_GENRE_EVERY - 1:
                genres.append(GENRES[(g + 1) % len(GENRES)])
            result.append(
                {
                    "item_id": f"film-{len(result) + 1:03d}",
                    "title": by_genre[genre][n],
                    "genres": genres,
                }
            )
    return result


def feedback(catalogue: list[Item]) -> list[Feedback]:
    """USERS_PER_GENRE users per genre: each likes LIKES_PER_USER films of their genre
    (a different window each) and dislikes DISLIKES_PER_USER of another genre."""
    result: list[Feedback] = []
    for g, genre in enumerate(GENRES):
        own = [i["item_id"] for i in catalogue if i["genres"][0] == genre]
        other = [i["item_id"] for i in catalogue if i["genres"][0] == GENRES[(g + 3) % len(GENRES)]]
        for u in range(USERS_PER_GENRE):
            start = u * len(own) // USERS_PER_GENRE
            liked = [own[(start + n) % len(own)] for n in range(LIKES_PER_USER)]
            disliked = [
                other[(u * DISLIKES_PER_USER + n) % len(other)] for n in range(DISLIKES_PER_USER)
            ]
            result.append(
                {
                    "user_id": f"sample-{genre.lower()}-{u:02d}",
                    "item_ids": liked + disliked,
                    "actions": ["like"] * len(liked) + ["dislike"] * len(disliked),
                }
            )
    return result


@cache
def sample() -> Sample:
    catalogue = items()
    return {
        "description": (
            f"{len(catalogue)} invented films in {len(GENRES)} genres, and the feedback of "
            f"{len(GENRES) * USERS_PER_GENRE} sample users who each like one genre "
            "(generated by services/api/sample_catalogue.py)"
        ),
        "items": catalogue,
        "feedback": feedback(catalogue),
    }
