"""The official google-genai Python SDK (pinned in requirements.txt), unchanged, against the
mock's gemini mode: it must parse every answer the mock gives (text, thoughts, function calls,
usage with cached and thought tokens, a blocked prompt), whole and streamed. A pass means the
mock's shapes are Gemini's as Google's own client reads them, so sluice's tests against the mock
test it against Gemini's shapes.

Run by tests/it/gemini/sdk.rs with GEMINI_MOCK (the mock's base URL) and GEMINI_KEY.
"""

import os

from google import genai
from google.genai import types

client = genai.Client(
    api_key=os.environ["GEMINI_KEY"],
    http_options=types.HttpOptions(base_url=os.environ["GEMINI_MOCK"], api_version="v1beta"),
)
checks = 0

# Text, with a system instruction and an output limit.
r = client.models.generate_content(
    model="gem-plain",
    contents="hello there",
    config=types.GenerateContentConfig(max_output_tokens=4, system_instruction="be brief"),
)
assert r.text == "hello hello hello hello", r
assert r.candidates[0].finish_reason == types.FinishReason.STOP, r
# 2 words + 3 per content + 3 + 2 system words.
assert r.usage_metadata.prompt_token_count == 10, r.usage_metadata
assert r.usage_metadata.candidates_token_count == 4, r.usage_metadata
assert r.response_id and r.model_version == "gem-plain", r
checks += 1

# Thoughts, two function calls, cache and thought usage.
weather = types.FunctionDeclaration(
    name="get_weather",
    description="weather",
    parameters=types.Schema(type="OBJECT", properties={"city": types.Schema(type="STRING")}),
)
clock = types.FunctionDeclaration(name="get_time")
config = types.GenerateContentConfig(
    max_output_tokens=100,
    tools=[types.Tool(function_declarations=[weather, clock])],
    automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    thinking_config=types.ThinkingConfig(thinking_budget=1024, include_thoughts=True),
)
model = "gem-mock-think-mock-tools-mock-cache-800"
r = client.models.generate_content(model=model, contents="weather and time?", config=config)
calls = r.function_calls
assert [c.name for c in calls] == ["get_weather", "get_time"], r
assert calls[0].args == {"city": "Paris", "n": 1}, calls
signed = [p.thought_signature for p in r.candidates[0].content.parts if p.function_call]
assert signed[0] and signed[1] is None, signed
thoughts = [p.text for p in r.candidates[0].content.parts if p.thought]
assert thoughts == ["Let me think."], r
u = r.usage_metadata
assert u.cached_content_token_count == 800 and u.thoughts_token_count == 3, u
assert u.prompt_token_count == 809 and u.candidates_token_count == 7, u
checks += 1

# The same streamed: each chunk a whole response; the last carries the final usage.
chunks = list(client.models.generate_content_stream(model=model, contents="weather and time?", config=config))
names = [c.name for ch in chunks for c in (ch.function_calls or [])]
assert names == ["get_weather", "get_time"], chunks
assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP, chunks[-1]
assert chunks[-1].usage_metadata.thoughts_token_count == 3, chunks[-1]
checks += 1

text = "".join(
    c.text or "" for c in client.models.generate_content_stream(
        model="gem-plain", contents="hi", config=types.GenerateContentConfig(max_output_tokens=3)
    )
)
assert text == "hello hello hello", text
checks += 1

# A blocked prompt: no candidates, the reason in promptFeedback.
r = client.models.generate_content(model="gem-mock-blocked", contents="hi")
assert r.prompt_feedback.block_reason == types.BlockedReason.SAFETY, r
assert not r.candidates and r.text is None, r
r = client.models.generate_content(model="gem-mock-safety", contents="hi")
assert r.candidates[0].finish_reason == types.FinishReason.SAFETY, r
checks += 1

# Google's errors, as the SDK raises them.
try:
    client.models.generate_content(model="gem-mock-429", contents="hi")
    raise AssertionError("no error")
except genai.errors.ClientError as e:
    assert e.code == 429 and e.status == "RESOURCE_EXHAUSTED", e
checks += 1

print(f"{checks} google-genai checks ok")
