"""Prometheus metrics for one server instance (own registry, so several servers can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, max_batch: int) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("axial_requests", "HTTP requests answered, by endpoint and status code",
                                ["endpoint", "code"], registry=r)
        self.latency = Histogram("axial_request_latency_seconds", "Time from request to last byte",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.first_token = Histogram("axial_time_to_first_token_seconds", "Time from admission to first text",
                                     buckets=LATENCY_BUCKETS, registry=r)
        batch_buckets = sorted({1, 2, 4, 8, 16, 32, 64, 128, max_batch})
        self.batch_size = Histogram("axial_batch_size", "Rows per generate call",
                                    buckets=[b for b in batch_buckets if b <= max_batch], registry=r)
        self.queue_depth = Gauge("axial_queue_depth", "Requests waiting for a batch", registry=r)
        self.running = Gauge("axial_running_rows", "Rows in the generate call now running", registry=r)
        self.tokens = Counter("axial_tokens", "Tokens processed", ["kind"], registry=r)
        self.finished = Counter("axial_rows_finished", "Generation rows by how they ended", ["reason"], registry=r)
        self.rejected = Counter("axial_rejected", "Requests refused before generation", ["reason"], registry=r)
        self.connections_closed = Counter(
            "axial_connections_closed", "Connections the server closed on its own (header_timeout, body_timeout, "
            "shed_idle: over the connection budget while waiting for a request, over_capacity: refused)",
            ["reason"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
