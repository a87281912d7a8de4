"""Trial counts, rates and durations of every row, for a full run and for --quick."""

from __future__ import annotations


class Params:
    def __init__(self, quick: bool, soak_seconds: float = 600.0) -> None:
        self.quick = quick
        self.trials = 5 if quick else 11             # loadgen trials per configuration and side
        self.ops = 50_000 if quick else 100_000       # openat per trial
        self.connect_ops = 20_000 if quick else 50_000
        self.spawn_ops = 300 if quick else 1_000      # fork+exec+wait per trial (≈ 0.7 ms each)
        self.rates = ([5_000, 10_000, 50_000, 200_000, 500_000] if quick else
                      [2_000, 10_000, 50_000, 100_000, 200_000, 400_000, 500_000, 600_000, 800_000])
        # Repeated connects (row 4a): one core of refused loopback connects tops out near 330k/s.
        self.repeat_connect_rates = ([5_000, 50_000, 200_000, 400_000] if quick else
                                     [2_000, 10_000, 50_000, 100_000, 200_000, 300_000, 400_000])
        self.rate_seconds = 1.0 if quick else 3.0
        self.rate_trials = 1 if quick else 3
        # Distinct events: half creates of distinct watched files, half connects to distinct
        # loopback destinations. 1k, 10k and 100k are also the CPU / context-switch points.
        self.distinct_rates = ([1_000, 10_000, 30_000, 100_000] if quick else
                               [1_000, 3_000, 10_000, 30_000, 50_000, 100_000])
        self.distinct_seconds = 1.0 if quick else 3.0
        self.latency_rate = 200                       # bulk lane (loopback connects)
        self.latency_crit_rates = [200, 1_000, 10_000]  # critical lane: distinct watched files
        self.latency_seconds = 2.0 if quick else 5.0
        self.idle_seconds = 3.0 if quick else 10.0
        self.load_seconds = 2.0 if quick else 5.0
        self.decode_records = 50_000 if quick else 100_000
        self.decode_repeats = 3 if quick else 5
        self.wake_rate = 2_000          # below saturation, so wake-ups are visible
        self.wake_seconds = 2.0 if quick else 4.0
        self.clean_wait = 3.0 if quick else 10.0      # wait per trial for other tracers to go
        self.clean_budget = 20.0 if quick else 90.0   # total such waiting per row
        self.flood_seconds = 10.0 if quick else 60.0
        self.flood_crit_rate = 200                    # critical opens/s during the flood
        self.flood_lead = 0.5                         # critical generator starts/ends inside the flood
        self.flood_ring_bulk = 1 << 20                # bulk ring (max-coverage alone gives 16 MiB)
        self.same_file_opens = 300_000                # issue 9's floods
        self.distinct_file_opens = 20_000
        self.ci_rounds = 3 if quick else 10           # CI job with and without the agent, alternated
        self.ci_sources = 30                          # generated .c files
        self.startup_trials = 3 if quick else 7
        self.soak_seconds = soak_seconds
        self.soak_warmup = min(60.0, soak_seconds / 5)
        # Soak load per second: distinct files + distinct destinations, processes, DNS queries.
        self.soak_distinct_rate = 2_000
        self.soak_spawn_rate = 50
        self.soak_dns_rate = 50
