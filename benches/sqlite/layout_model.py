#!/usr/bin/env python3
"""A model of the embedded store's message commits: log frames per message for two layouts.

Writes messages into 1,000 channels in batches, as the SQLite writer does under durable sends
(one transaction per batch; per message the channel's row changes, the message and its event
are inserted), and counts the write-ahead log frames the commits write. `clustered` is the
first schema (messages and events WITHOUT ROWID, keyed by channel); `arrival` is migration 5
(rowid tables with unique indexes). Not a benchmark of Confab: it isolates the page layout.

    python3 benches/sqlite/layout_model.py clustered
    python3 benches/sqlite/layout_model.py arrival

Options: --batch (62, the writer's mean batch in the durable-sends run), --channels (1,000),
--history (100 messages per channel before counting), --messages (60,000 counted).
"""
import argparse
import os
import random
import sqlite3
import tempfile
import time

SCHEMAS = {
    "clustered": [
        "CREATE TABLE messages (channel_sid TEXT NOT NULL, idx INTEGER NOT NULL, sid TEXT NOT NULL UNIQUE,"
        " data TEXT NOT NULL, PRIMARY KEY (channel_sid, idx)) WITHOUT ROWID",
        "CREATE TABLE channel_events (channel_sid TEXT NOT NULL, seq INTEGER NOT NULL, data TEXT NOT NULL,"
        " PRIMARY KEY (channel_sid, seq)) WITHOUT ROWID",
    ],
    "arrival": [
        "CREATE TABLE messages (channel_sid TEXT NOT NULL, idx INTEGER NOT NULL, sid TEXT NOT NULL, data TEXT NOT NULL)",
        "CREATE UNIQUE INDEX messages_by_channel ON messages(channel_sid, idx)",
        "CREATE UNIQUE INDEX messages_by_sid ON messages(sid)",
        "CREATE TABLE channel_events (channel_sid TEXT NOT NULL, seq INTEGER NOT NULL, data TEXT NOT NULL)",
        "CREATE UNIQUE INDEX channel_events_by_channel ON channel_events(channel_sid, seq)",
    ],
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("layout", choices=sorted(SCHEMAS))
    parser.add_argument("--batch", type=int, default=62)
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--history", type=int, default=100)
    parser.add_argument("--messages", type=int, default=60000)
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as dir:
        db = sqlite3.connect(os.path.join(dir, "model.db"), isolation_level=None)
        for pragma in ["journal_mode = WAL", "synchronous = NORMAL", "wal_autocheckpoint = 0"]:
            db.execute(f"PRAGMA {pragma}")
        db.execute(
            "CREATE TABLE channels (sid TEXT PRIMARY KEY, service_sid TEXT NOT NULL, unique_name TEXT,"
            " kind TEXT NOT NULL, data TEXT NOT NULL, UNIQUE (service_sid, unique_name))"
        )
        for sql in SCHEMAS[args.layout]:
            db.execute(sql)
        # Record sizes as stored by a run of confab-bench's durable sends: channel 447 bytes,
        # message 471, event 584.
        channels = ["CH%032x" % rng.getrandbits(128) for _ in range(args.channels)]
        for sid in channels:
            db.execute("INSERT INTO channels VALUES (?, 'IS1', ?, 'public', ?)", (sid, sid, "c" * 447))
        next_index = dict.fromkeys(channels, 0)
        counter = [0]

        def batch(size):
            db.execute("BEGIN")
            for _ in range(size):
                sid = rng.choice(channels)
                index = next_index[sid]
                next_index[sid] += 1
                counter[0] += 1
                # The channel's record changes with every message (count, last message, seq):
                # SQLite leaves a page alone when a row is rewritten unchanged.
                db.execute("UPDATE channels SET data = ? WHERE sid = ?", ("c" * 435 + "%012d" % counter[0], sid))
                message_sid = "IM%020d%012x" % (counter[0], rng.getrandbits(48))
                db.execute(
                    "INSERT INTO messages (channel_sid, idx, sid, data) VALUES (?, ?, ?, ?)",
                    (sid, index, message_sid, "m" * 471),
                )
                db.execute(
                    "INSERT INTO channel_events (channel_sid, seq, data) VALUES (?, ?, ?)",
                    (sid, index, "e" * 584),
                )
            db.execute("COMMIT")

        for _ in range(args.history * args.channels // args.batch):
            batch(args.batch)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        frames, started = 0, time.process_time()
        for n in range(args.messages // args.batch):
            batch(args.batch)
            if n % 50 == 49 or n == args.messages // args.batch - 1:
                frames += db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        counted = args.messages // args.batch * args.batch
        cpu = (time.process_time() - started) / counted * 1e6
        print(f"{args.layout}: {frames / counted:.2f} log frames per message, {cpu:.0f} us of CPU per message (Python included)")


if __name__ == "__main__":
    main()
