"""User profiles from behaviour and text: interest keywords, genre mix, head/tail/cold mix, activity,
multi-interest centroids.

>>> ctx = ProfileContext.from_dataset(ds, embed_items(ds.items))        # doctest: +SKIP
>>> profiles = build_profiles(ctx, HistoryBatch.from_interactions(ds.train_valid))  # doctest: +SKIP
>>> profile_user(ctx, [0, 17, 42]).to_dict()["keywords"]                # doctest: +SKIP
"""

from longtail.profile.build import build_profiles, profile_user
from longtail.profile.context import ProfileContext, activity_cuts
from longtail.profile.interests import interest_count, spherical_kmeans
from longtail.profile.keywords import (
    DEFAULT_METHOD,
    KEYBERT,
    METHODS,
    TFIDF,
    KeywordIndex,
)
from longtail.profile.profile import Activity, Interest, UserProfile

__all__ = [
    "DEFAULT_METHOD",
    "KEYBERT",
    "METHODS",
    "TFIDF",
    "Activity",
    "Interest",
    "KeywordIndex",
    "ProfileContext",
    "UserProfile",
    "activity_cuts",
    "build_profiles",
    "interest_count",
    "profile_user",
    "spherical_kmeans",
]
