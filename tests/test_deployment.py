"""The compose file cannot run here (no Docker engine), so its shape is checked instead."""

from pathlib import Path

import yaml

from gateway.settings import ENV_VARS

REPO = Path(__file__).resolve().parent.parent


def load_compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_gateway_sets_only_variables_the_settings_know():
    compose = load_compose()
    gateways = [s for s in compose["services"].values() if "build" in s]
    assert gateways, "a gateway service is built from the Dockerfile"
    for service in gateways:
        unknown = set(service["environment"]) - set(ENV_VARS)
        assert not unknown, f"variables the settings do not read: {sorted(unknown)}"


def test_compose_runs_pgvector_redis_and_two_gateways_behind_a_proxy_with_health_checks():
    services = load_compose()["services"]
    image, tag = services["postgres"]["image"].split(":")
    assert image == "pgvector/pgvector" and int(tag.removeprefix("pg")) >= 17
    assert services["redis"]["image"].startswith("redis:7")
    assert services["gateway"]["deploy"]["replicas"] == 2
    assert "gateway:8000" in (REPO / "deploy/nginx.conf").read_text()
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no health check"


def test_dockerfile_copies_every_top_level_package():
    dockerfile = (REPO / "Dockerfile").read_text()
    for folder in ("gateway", "coaching", "storage", "migrations", "web"):
        assert f"COPY {folder} ./{folder}" in dockerfile
