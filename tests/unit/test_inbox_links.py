"""Sign-in links, tokens and the inbox's start-up checks, without a server: expired, tampered,
malformed and other-secret links are refused; token lists and TTLs are checked; the inbox refuses
a public address without a secret; reminder links stay out of an activity's result."""

from __future__ import annotations

import time

import pytest

from activities.contracts import StepActivityInput
from activities.registry import ActionSpec
from activities.steps import _with_links, _without
from worker.cli.inbox import checked_secret, is_loopback, parse_ttl
from worker.inbox.links import LinkInvalid, LinkSigner, reminder_links
from worker.inbox.settings import InboxConfigInvalid, InboxSettings, token_owner

SECRET = b"k" * 40


def test_a_link_names_its_approver_until_it_expires() -> None:
    signer = LinkSigner(SECRET)
    token = signer.issue("maria", ttl=60)
    assert signer.verify(token) == "maria"
    with pytest.raises(LinkInvalid, match="expired"):
        signer.verify(token, now=time.time() + 61)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # the MAC
        lambda t: LinkSigner(SECRET).issue("mark", 60).split(".")[0] + "." + t.split(".")[1],
        lambda t: "x" + t,
    ],
)
def test_altered_links_are_refused(tamper) -> None:  # type: ignore[no-untyped-def]
    token = LinkSigner(SECRET).issue("maria", 60)
    with pytest.raises(LinkInvalid, match="not valid"):
        LinkSigner(SECRET).verify(tamper(token))


@pytest.mark.parametrize("token", ["", "nodot", "a" * 3000, "...", "é.é"])
def test_malformed_links_are_refused(token: str) -> None:
    with pytest.raises(LinkInvalid):
        LinkSigner(SECRET).verify(token)


def test_a_link_of_another_secret_is_refused() -> None:
    token = LinkSigner(b"o" * 40).issue("maria", 60)
    with pytest.raises(LinkInvalid, match="another key"):
        LinkSigner(SECRET).verify(token)


def test_tokens_map_to_approvers_and_short_ones_are_refused() -> None:
    tokens = InboxSettings(inbox_tokens="ci-bot=" + "t" * 30 + ", ops = " + "u" * 24).tokens()
    assert token_owner(tokens, "t" * 30) == "ci-bot"
    assert token_owner(tokens, "u" * 24) == "ops"
    assert token_owner(tokens, "t" * 29) is None
    with pytest.raises(InboxConfigInvalid, match="at least 24"):
        InboxSettings(inbox_tokens="bot=short").tokens()


def test_a_public_address_needs_a_secret() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("inbox.example.com")
    with pytest.raises(InboxConfigInvalid, match="not a loopback address"):
        checked_secret(InboxSettings(inbox_secret=""), "0.0.0.0")
    with pytest.raises(InboxConfigInvalid, match="at least 32"):
        checked_secret(InboxSettings(inbox_secret="short"), "127.0.0.1")
    assert checked_secret(InboxSettings(inbox_secret="s" * 32), "0.0.0.0") == b"s" * 32
    assert len(checked_secret(InboxSettings(inbox_secret=""), "127.0.0.1")) == 32


def test_ttls() -> None:
    assert parse_ttl("90") == 90 and parse_ttl("30m") == 1800 and parse_ttl("7d") == 7 * 86400
    for bad in ("0", "31d", "soon", "-5m"):
        with pytest.raises(InboxConfigInvalid, match="--ttl"):
            parse_ttl(bad)


def test_reminders_carry_links_their_results_do_not() -> None:
    links = reminder_links("https://inbox.example", "s" * 32, 600)
    assert links is not None and reminder_links("", "s" * 32, 600) is None
    assert reminder_links("https://inbox.example", "short", 600) is None
    request = StepActivityInput(
        workflow_id="w",
        step_id="ok",
        params={"message": "waits", "approvers": ["maria", "mark"]},
        role="reminder",
    )
    custom = ActionSpec(name="team.notify", fn=lambda p, c: p, input_model=None, description="")
    sent, made = _with_links(request, custom, links)
    assert len(made) == 2 and all(u.startswith("https://inbox.example/login?token=") for u in made)
    assert set(sent.params["inbox_links"]) == {"maria", "mark"}
    assert made[0] in sent.params["message"]
    assert "token=" not in str(_without({"echo": sent.params}, made))
    log = ActionSpec(name="std.log", fn=lambda p, c: p, input_model=None, description="")
    assert _with_links(request, log, links) == (request, [])  # logs keep no credentials
    step = request.model_copy(update={"role": "step"})
    assert _with_links(step, custom, links) == (step, [])
