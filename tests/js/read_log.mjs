// Reads a sensorimotor MCAP log with Foxglove's TypeScript reader (@mcap/core), a second
// implementation beside the Python one, and prints what it found as one JSON object.
//
//   node tests/js/read_log.mjs LOG
//
// "indexed": McapIndexedReader, as Foxglove opens a complete file (summary, indexes, footer);
//            {"error": ...} when the file has none (a crashed writer).
// "streamed": McapStreamReader over the whole file, record by record, as for a truncated file.
// Driven by tests/hardware/test_log_js_reader.py.

import { open, readFile } from "node:fs/promises";

import { McapIndexedReader, McapStreamReader } from "@mcap/core";
import { decompress } from "fzstd";

const decompressHandlers = {
  zstd: (data, size) => decompress(data, new Uint8Array(Number(size))),
};
const text = new TextDecoder();

function describeSchema(schema) {
  if (schema === undefined) {
    return { schemaId: 0 };
  }
  let parsed;
  try {
    parsed = JSON.parse(text.decode(schema.data));
  } catch (error) {
    parsed = { parseError: String(error) };
  }
  return {
    schemaId: schema.id,
    schemaName: schema.name,
    schemaEncoding: schema.encoding,
    schemaParses: parsed.parseError === undefined,
    schemaHasProperties: typeof parsed.properties === "object" && parsed.properties !== null,
  };
}

function describeChannel(channel, schemasById) {
  return { topic: channel.topic, messageEncoding: channel.messageEncoding, ...describeSchema(schemasById.get(channel.schemaId)) };
}

// Counts messages per topic; JSON messages must parse with JSON.parse, as Foxglove decodes them.
class Tally {
  counts = {};
  jsonFailures = [];

  add(channel, message) {
    this.counts[channel.topic] = (this.counts[channel.topic] ?? 0) + 1;
    if (channel.messageEncoding === "json") {
      try {
        JSON.parse(text.decode(message.data));
      } catch (error) {
        this.jsonFailures.push(`${channel.topic} at ${message.logTime}: ${error}`);
      }
    }
  }
}

async function readIndexed(path) {
  const handle = await open(path, "r");
  try {
    const readable = {
      size: async () => BigInt((await handle.stat()).size),
      read: async (offset, size) => {
        const buffer = new Uint8Array(Number(size));
        await handle.read(buffer, 0, Number(size), Number(offset));
        return buffer;
      },
    };
    let reader;
    try {
      reader = await McapIndexedReader.Initialize({ readable, decompressHandlers });
    } catch (error) {
      return { error: String(error) };
    }
    const tally = new Tally();
    for await (const message of reader.readMessages({ validateCrcs: true })) {
      tally.add(reader.channelsById.get(message.channelId), message);
    }
    const metadata = {};
    for await (const record of reader.readMetadata()) {
      metadata[record.name] = Object.fromEntries(record.metadata);
    }
    const statistics = {};
    for (const [id, count] of reader.statistics?.channelMessageCounts ?? []) {
      statistics[reader.channelsById.get(id).topic] = Number(count);
    }
    return {
      profile: reader.header.profile,
      channels: [...reader.channelsById.values()].map((c) => describeChannel(c, reader.schemasById)),
      counts: tally.counts,
      jsonFailures: tally.jsonFailures,
      statistics,
      metadata,
    };
  } finally {
    await handle.close();
  }
}

async function readStreamed(path) {
  const reader = new McapStreamReader({ decompressHandlers, validateCrcs: true });
  reader.append(await readFile(path));
  const schemasById = new Map();
  const channelsById = new Map();
  const tally = new Tally();
  let profile;
  for (let record; (record = reader.nextRecord()); ) {
    if (record.type === "Header") {
      profile = record.profile;
    } else if (record.type === "Schema") {
      schemasById.set(record.id, record);
    } else if (record.type === "Channel") {
      channelsById.set(record.id, record);
    } else if (record.type === "Message") {
      tally.add(channelsById.get(record.channelId), record);
    }
  }
  return {
    profile,
    done: reader.done(),
    channels: [...channelsById.values()].map((c) => describeChannel(c, schemasById)),
    counts: tally.counts,
    jsonFailures: tally.jsonFailures,
  };
}

const path = process.argv[2];
const result = { indexed: await readIndexed(path), streamed: await readStreamed(path) };
process.stdout.write(JSON.stringify(result));
