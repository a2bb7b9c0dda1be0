"""The official OpenAI Python SDK (pinned in openai-requirements.txt), unchanged, as a Responses
client of sluice.

Run by tests/it/responses/sdk.rs with SLUICE_BASE, SLUICE_KEY and, per channel, a plain model
and a tools model (SLUICE_MODELS="plain:tools,plain:tools"). `responses.stream()` accumulates
the events into a snapshot and raises on a malformed sequence (a delta before its item, an
item left unfinished at response.completed, a response id that changes), so a pass means the
stream is well-formed for the SDK Codex-style agents are built on.
"""

import json
import os

import openai

base = os.environ["SLUICE_BASE"]
key = os.environ["SLUICE_KEY"]
pairs = [p.split(":") for p in os.environ["SLUICE_MODELS"].split(",")]

client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)

TOOLS = [
    {"type": "function", "name": "get_weather", "description": "weather",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
    {"type": "function", "name": "get_time",
     "parameters": {"type": "object", "properties": {}}},
]
passes = 0

for plain, tools in pairs:
    r = client.responses.create(model=plain, input="hello", max_output_tokens=5,
                                instructions="be brief")
    assert r.object == "response" and r.status == "completed", r
    assert r.output_text == "hello hello hello hello hello", r.output_text
    assert r.usage.output_tokens == 5, r.usage

    with client.responses.stream(model=plain, input="hello", max_output_tokens=4) as s:
        deltas = [e.delta for e in s if e.type == "response.output_text.delta"]
        final = s.get_final_response()
    assert "".join(deltas) == "hello hello hello hello", deltas
    assert final.output_text == "hello hello hello hello", final
    assert final.usage.output_tokens == 4, final.usage

    # Raw events with stream=True: sequence numbers count up, the last is response.completed.
    events = list(client.responses.create(model=plain, input="hello", max_output_tokens=3,
                                          stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events))), events
    assert events[0].type == "response.created" and events[-1].type == "response.completed", events

    with client.responses.stream(model=tools, input="weather and time in Paris?", tools=TOOLS,
                                 reasoning={"effort": "low"}, max_output_tokens=3000) as s:
        arg_deltas = [e for e in s if e.type == "response.function_call_arguments.delta"]
        final = s.get_final_response()
    calls = [o for o in final.output if o.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather", "get_time"], final.output
    assert [json.loads(c.arguments) for c in calls] == [{"city": "Paris", "n": 1}] * 2, calls
    assert len(arg_deltas) >= 2, arg_deltas
    reasoning = [o for o in final.output if o.type == "reasoning"]
    assert reasoning and reasoning[0].summary[0].text == "Let me think.", final.output

    # The next turn: the output items sent back, and each call's result.
    turn = [{"role": "user", "content": "weather and time in Paris?"}]
    turn += [o.model_dump(exclude_none=True) for o in final.output]
    turn += [{"type": "function_call_output", "call_id": c.call_id, "output": "fine"}
             for c in calls]
    r = client.responses.create(model=tools, input=turn, tools=TOOLS,
                                reasoning={"effort": "low"}, max_output_tokens=3000)
    assert r.status == "completed", r
    passes += 1

print(f"{passes} channel passes ok")
