"""Rich tables of a dataset's statistics, for ``longtail inspect`` (the numbers: ``data.stats``)."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def stats_tables(stats: dict[str, Any]) -> list[Table]:
    """Tables of ``raw_stats`` + ``protocol_stats`` (what ``longtail inspect`` shows): the raw
    interactions, the protocol's split, the popularity buckets."""
    tables = []
    raw, proto = stats["raw"], stats["protocol"]
    table = Table(title=f"{stats['dataset']}: raw interactions", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        ("users", f"{raw['users']:,}"),
        ("items in catalogue", f"{raw['items_in_items_csv']:,}"),
        ("items interacted", f"{raw['items_interacted']:,}"),
        ("interactions", f"{raw['interactions']:,}"),
        ("duplicate user-item pairs", f"{raw['duplicate_user_item_pairs']:,}"),
        ("density", f"{raw['density']:.4%}"),
        ("time range (UTC)", f"{raw['time_min_utc']} .. {raw['time_max_utc']}"
         if raw["time_min_utc"] else f"sequence positions 0..{raw.get('sequence_position_max')}"),
        ("per user: median / mean / max",
         "{median:g} / {mean:.1f} / {max}".format(**raw["interactions_per_user"])),
        ("per item: median / mean / max",
         "{median:g} / {mean:.1f} / {max}".format(**raw["interactions_per_item"])),
        ("items covering 20% of interactions", f"{raw['head_items_covering_20pct_interactions']:,}"),
        ("top 20% items' share of interactions", f"{raw['top20pct_items_share_of_interactions']:.1%}"),
        ("items with < 5 interactions", f"{raw['items_lt5_interactions']:,}"),
        ("Gini of item popularity", f"{raw['gini_item_popularity']:.3f}"),
    ]
    for row in rows:
        table.add_row(*row)
    tables.append(table)
    split = proto["split"]
    mode = ", keep-seen" if proto.get("keep_seen") else ""
    table = Table(title=f"protocol {proto['protocol']}{mode} (positives: rating >= {proto['min_rating']:g})")
    for column in ("part", "positives", "users"):
        table.add_column(column, justify="right")
    table.add_row("train", f"{split['train']:,}", "")
    table.add_row("valid", f"{split['valid']:,}", f"{split['valid_users']:,}")
    table.add_row("test", f"{split['test']:,}", f"{split['test_users']:,}")
    tables.append(table)
    table = Table(title="popularity buckets (train+valid)")
    for column in ("bucket", "items", "share of catalogue", "share of positives"):
        table.add_column(column, justify="right")
    for name, bucket in proto["buckets"].items():
        table.add_row(name, f"{bucket['items']:,}", f"{bucket['share_of_catalogue']:.1%}",
                      f"{bucket['share_of_positives']:.1%}")
    tables.append(table)
    return tables
