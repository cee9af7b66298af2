"""The official `openai` npm SDK parses promptd's answers: Responses (plain and
streamed) and a chat completion with prompt fields spread into the body."""

from __future__ import annotations

import asyncio
from pathlib import Path

HERE = Path(__file__).parent


async def test_the_npm_sdk_parses_responses_and_chat(npm_sdk, gateway_client):
    from promptd.app import create_app
    from promptd.settings import load_settings

    client = await gateway_client(create_app(load_settings(HERE.parent / "config", environ={})))
    process = await asyncio.create_subprocess_exec(
        "node",
        "check.mjs",
        str(client.make_url("/v1")),
        cwd=npm_sdk,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    lines = stdout.decode().splitlines()
    assert lines[0].startswith('output_text: {"instructions":"Be friendly')
    assert lines[1].startswith("stream: response.created response.completed")
    assert lines[2].startswith('chat: [{"role":"developer"')
