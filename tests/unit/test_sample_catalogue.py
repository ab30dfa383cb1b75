"""The demo's generated sample: stable, varied, and shaped so that likes can show."""

from __future__ import annotations

from collections import Counter

from services.api.sample_catalogue import FILMS_PER_GENRE, GENRES, items, sample
from services.common.events import InteractEvent


def test_the_sample_is_the_same_on_every_call_and_a_few_hundred_films() -> None:
    assert items() == items()
    films = sample()["items"]
    assert len(films) == len(GENRES) * FILMS_PER_GENRE >= 300
    assert len({f["item_id"] for f in films}) == len(films)
    assert len({f["title"] for f in films}) == len(films)
    assert Counter(f["genres"][0] for f in films) == dict.fromkeys(GENRES, FILMS_PER_GENRE)


def test_each_sample_user_likes_films_of_one_genre_and_sends_valid_events() -> None:
    films = {f["item_id"]: f["genres"] for f in sample()["items"]}
    for event in sample()["feedback"]:
        InteractEvent.model_validate(event)
        liked = [i for i, a in zip(event["item_ids"], event["actions"], strict=True) if a == "like"]
        assert len({films[i][0] for i in liked}) == 1, event
        assert len(set(event["item_ids"])) == len(event["item_ids"])
