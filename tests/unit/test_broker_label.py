"""The broker URL as logged: no password of any URL of a failover list (mgmt_plane_ha gives every node)."""

from __future__ import annotations

from smcp_api.jobs.dispatch import broker_label


def test_one_url_is_masked() -> None:
    assert broker_label("amqps://smcp:s3cret@10.0.0.1:5671/smcp") == "amqps://smcp:**@10.0.0.1:5671/smcp"


def test_every_url_of_a_failover_list_is_masked() -> None:
    url = ";".join(f"amqps://smcp:pw-{i}-secret@10.0.0.{i}:5671/smcp" for i in (1, 2, 3))
    label = broker_label(url)
    assert "secret" not in label
    assert label.split(";") == [f"amqps://smcp:**@10.0.0.{i}:5671/smcp" for i in (1, 2, 3)]


def test_empty_url_stays_empty() -> None:
    assert broker_label("") == ""
