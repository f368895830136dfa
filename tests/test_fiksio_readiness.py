"""/readyz and the start-up log with PPT_ARCHIVE_BACKEND=fiksio: what the operator is told, in order."""
from __future__ import annotations

import logging
import uuid

import pytest

from ppt_web.main import health
from ppt_web.outbound.svarut import StaticTokenProvider
from ppt_web.queue import connection

from .fiksio_server import FiksIoTestServer
from .test_fiksio_client import Party

pytestmark = [pytest.mark.one_database, pytest.mark.app_config(PPT_ARCHIVE_BACKEND="fiksio")]


@pytest.fixture(scope="module")
def parties():
    return {"app": Party("ppt_web"), "archive": Party("arkivet")}


@pytest.fixture
def fiksio(app, parties, tmp_path):
    """The app configured for a Fiks IO test server that knows both accounts."""
    ours = parties["app"]
    (tmp_path / "key.pem").write_bytes(ours.key_pem)
    (tmp_path / "cert.pem").write_bytes(ours.certificate_pem)
    with FiksIoTestServer(None, ours.certificate_pem) as server:
        for party in parties.values():
            server.add_account(party.account_id, party.certificate_pem, party.key_pem, party.integration_id,
                               party.password)
        app.config.update(PPT_FIKSIO_API_URL=server.url, PPT_FIKSIO_AMQP_URL="amqp://127.0.0.1:5672",
                          PPT_FIKSIO_ACCOUNT_ID=ours.account_id,
                          PPT_FIKSIO_ARCHIVE_ACCOUNT_ID=parties["archive"].account_id,
                          PPT_FIKSIO_PRIVATE_KEY=str(tmp_path / "key.pem"),
                          PPT_FIKSIO_CERTIFICATE=str(tmp_path / "cert.pem"),
                          PPT_FIKSIO_INTEGRATION_ID=ours.integration_id, PPT_FIKSIO_INTEGRATION_PASSWORD=ours.password,
                          PPT_FIKSIO_TOKEN_PROVIDER=StaticTokenProvider("token"))
        yield server
    with app.app_context():
        connection().delete("ppt:fiksio:consumer:" + ours.account_id)


def archive_line(client) -> str:
    answer = client.get("/readyz")
    return answer.json["checks"]["archive"]


def test_missing_settings_show_the_first_three_and_how_many_more(client):
    line = archive_line(client)
    assert line.startswith("PPT_FIKSIO_ACCOUNT_ID is not set (our Fiks IO account id, from KS Fiks Forvaltning); "
                           "PPT_FIKSIO_ARCHIVE_ACCOUNT_ID is not set")
    assert line.endswith("(and 4 more)")
    assert client.get("/readyz").status_code == 503


def test_the_catalog_must_know_the_archive_account(app, client, fiksio):
    stranger = str(uuid.uuid4())
    app.config["PPT_FIKSIO_ARCHIVE_ACCOUNT_ID"] = stranger
    assert archive_line(client) == ("the archive account's public key cannot be fetched from the Fiks IO catalog: "
                                    f"Fiks IO kjenner ikkje kontoen {stranger} eller han har ingen offentleg nøkkel")


def test_the_catalog_must_answer(app, client, fiksio):
    fiksio.stop()
    assert archive_line(client).startswith("the archive account's public key cannot be fetched from the Fiks IO "
                                           "catalog: fekk ikkje kontakt med Fiks IO-katalogen")


def test_ready_only_while_a_consumer_of_our_queue_is_connected(app, client, fiksio, parties):
    """The worker's consumer keeps a Redis key while it consumes; without it nobody reads the replies."""
    assert archive_line(client) == "no Fiks IO consumer is connected (is a worker running?)"
    with app.app_context():
        connection().set("ppt:fiksio:consumer:" + parties["app"].account_id, "worker-1", ex=30)
    assert archive_line(client) == "ok"
    # The archive's key is cached: a second check does not ask the catalog again.
    assert archive_line(client) == "ok"
    assert sum(r["path"].endswith("/offentligNokkel") for r in fiksio.requests) == 1


def test_the_start_logs_every_problem_once_as_an_error_and_still_starts(app, caplog):
    caplog.set_level(logging.ERROR, logger="ppt_web.main.health")
    health.log_archive_problems(app)
    [record] = [r for r in caplog.records if r.name == "ppt_web.main.health"]
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    assert message.startswith("PPT_ARCHIVE_BACKEND=fiksio cannot work: PPT_FIKSIO_ACCOUNT_ID is not set")
    assert "PPT_FIKSIO_TOKEN_PROVIDER is not set" in message


def test_another_backend_logs_nothing_about_fiks_io(app, caplog):
    app.config["PPT_ARCHIVE_BACKEND"] = "local"
    caplog.set_level(logging.ERROR)
    health.log_archive_problems(app)
    assert not [r for r in caplog.records if "fiksio" in r.getMessage()]


def test_create_app_says_it_at_start(app, caplog):
    """The app fixture built this app with PPT_ARCHIVE_BACKEND=fiksio and nothing else set: it came up,
    and said why Fiks IO cannot work."""
    said = [r.getMessage() for r in caplog.get_records("setup") if r.name == "ppt_web.main.health"]
    assert len(said) == 1 and said[0].startswith("PPT_ARCHIVE_BACKEND=fiksio cannot work: ")
