"""The official Anthropic Python SDK (pinned in requirements.txt), unchanged, against sluice.

Run by tests/it/formats/sdk.rs with SLUICE_BASE, SLUICE_KEY and, per channel kind, a plain
model and a tools model: `messages.stream()` checks the event order strictly (a block delta
before its start, or an event after message_stop, raises), so a pass means the stream is
well-formed for the SDK that Claude Code's own is modelled on.
"""

import os
import sys

import anthropic

base = os.environ["SLUICE_BASE"]
key = os.environ["SLUICE_KEY"]
pairs = [p.split(":") for p in os.environ["SLUICE_MODELS"].split(",")]

clients = [
    # x-api-key, as curl examples and older SDKs send it
    anthropic.Anthropic(base_url=base, api_key=key, max_retries=0),
    # Authorization: Bearer, as newer SDKs (and ANTHROPIC_AUTH_TOKEN) do
    anthropic.Anthropic(base_url=base, auth_token=key, api_key=None, max_retries=0),
]

WEATHER = {"name": "get_weather", "description": "weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
TIME = {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
checks = 0

for client in clients:
    for plain, tools in pairs:
        m = client.messages.create(
            model=plain, max_tokens=5, system="be brief",
            messages=[{"role": "user", "content": "hello"}],
        )
        assert m.type == "message" and m.role == "assistant", m
        assert m.content[0].type == "text" and m.content[0].text == "hello hello hello hello hello", m
        assert m.stop_reason == "end_turn", m
        assert m.usage.output_tokens == 5, m.usage

        with client.messages.stream(
            model=plain, max_tokens=4, messages=[{"role": "user", "content": "hello"}]
        ) as s:
            text = "".join(s.text_stream)
            final = s.get_final_message()
        assert text == "hello hello hello hello", text
        assert final.stop_reason == "end_turn", final
        assert final.usage.output_tokens == 4, final.usage

        with client.messages.stream(
            model=tools, max_tokens=3000, tools=[WEATHER, TIME],
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[{"role": "user", "content": "weather and time in Paris?"}],
        ) as s:
            final = s.get_final_message()
        uses = [b for b in final.content if b.type == "tool_use"]
        assert [u.name for u in uses] == ["get_weather", "get_time"], final.content
        assert [u.input for u in uses] == [{"city": "Paris", "n": 1}] * 2, final.content
        assert final.stop_reason == "tool_use", final

        # The second turn with the results (and any thinking block) sent back.
        m = client.messages.create(
            model=tools, max_tokens=3000, tools=[WEATHER, TIME],
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[
                {"role": "user", "content": "weather and time in Paris?"},
                {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": uses[0].id, "content": "sunny"},
                    {"type": "tool_result", "tool_use_id": uses[1].id, "content": "noon"},
                ]},
            ],
        )
        assert m.stop_reason == "tool_use", m

        n = client.messages.count_tokens(model=plain, messages=[{"role": "user", "content": "hello"}])
        assert n.input_tokens > 0, n

        try:
            client.messages.create(model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
            raise AssertionError("a model no channel serves was answered")
        except anthropic.NotFoundError as e:
            assert e.body["error"]["type"] == "not_found_error", e.body
        checks += 1

try:
    anthropic.Anthropic(base_url=base, api_key="sk-wrong", max_retries=0).messages.create(
        model=pairs[0][0], max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    raise AssertionError("a wrong key was let in")
except anthropic.AuthenticationError as e:
    assert e.body["error"]["type"] == "authentication_error", e.body

print(f"anthropic sdk {anthropic.__version__}: {checks} client/channel passes ok")
sys.exit(0)
