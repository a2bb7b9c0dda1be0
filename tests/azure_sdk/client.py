"""The official `openai` SDK's AzureOpenAI client, unchanged, making the calls sluice's azure
channels make: chat (whole and streamed with usage) and embeddings, on the deployments route.
tests/it/azure_sdk.rs runs it against the mock's Azure mode and compares what arrived with
what sluice sends. Prints one JSON line of what the SDK read back.

    python client.py ENDPOINT API_KEY API_VERSION CHAT_DEPLOYMENT EMBEDDINGS_DEPLOYMENT
"""

import json
import sys

from openai import AzureOpenAI


def main() -> None:
    endpoint, api_key, api_version, chat_dep, emb_dep = sys.argv[1:6]
    client = AzureOpenAI(
        azure_endpoint=endpoint,
        api_key=api_key,
        api_version=api_version,
        max_retries=0,
        timeout=20,
    )
    messages = [{"role": "user", "content": "hello"}]
    whole = client.chat.completions.create(model=chat_dep, messages=messages, max_tokens=3)
    text = ""
    usage = None
    stream = client.chat.completions.create(
        model=chat_dep,
        messages=messages,
        max_tokens=4,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
        if chunk.usage is not None:
            usage = chunk.usage.model_dump()
    emb = client.embeddings.create(model=emb_dep, input="one two three")
    print(
        json.dumps(
            {
                "whole": whole.choices[0].message.content,
                "whole_usage": whole.usage.model_dump(),
                "stream": text,
                "stream_usage": usage,
                "embedding_len": len(emb.data[0].embedding),
                "embedding_usage": emb.usage.prompt_tokens,
            }
        )
    )


if __name__ == "__main__":
    main()
