// Run by tests/test_npm_sdk.py: the official openai npm SDK against promptd (echo upstream).
import OpenAI from "openai";
const client = new OpenAI({ baseURL: process.argv[2], apiKey: "unused" });
const r = await client.responses.create({ model: "echo", input: "hi",
  prompt: { id: "customer_support", variables: { customer_name: "Sarah", issue_type: "billing" } } });
console.log("output_text:", r.output_text.slice(0, 60));
const stream = await client.responses.create({ model: "echo", input: "hi", stream: true,
  prompt: { id: "translate", variables: { language: "German" } } });
const kinds = [];
for await (const event of stream) kinds.push(event.type);
console.log("stream:", kinds[0], kinds[kinds.length - 1], kinds.length);
const promptFields = { prompt_id: "customer_support", prompt_variables: { customer_name: "Sarah", issue_type: "billing" } };
const answer = await client.chat.completions.create({ model: "echo", messages: [], ...promptFields });
console.log("chat:", answer.choices[0].message.content.slice(0, 60));
