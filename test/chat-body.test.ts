import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { base64Into, BodyBuffers, chatRequestBody } from '../src/model/chat-body.js';
import { buildReportMessages, MEDEVALKIT_REPORT_PROMPT } from '../src/model/prompt.js';

describe('chatRequestBody', () => {
  it('is the JSON the OpenAI client would send, each image a base64 data URL written into it', () => {
    const pngs = [randomBytes(300_001), randomBytes(2)];
    const messages = buildReportMessages(pngs.map((png) => ({ png })));
    const sent = JSON.parse(chatRequestBody({ model: 'lingshu', messages, temperature: 0, max_tokens: 512 }).toString('utf8')) as unknown;
    expect(sent).toEqual({
      model: 'lingshu', temperature: 0, max_tokens: 512,
      messages: [{
        role: 'user',
        content: [
          { type: 'text', text: '<image_1>: ' },
          { type: 'image_url', image_url: { url: `data:image/png;base64,${pngs[0]!.toString('base64')}` } },
          { type: 'text', text: '<image_2>: ' },
          { type: 'image_url', image_url: { url: `data:image/png;base64,${pngs[1]!.toString('base64')}` } },
          { type: 'text', text: MEDEVALKIT_REPORT_PROMPT },
        ],
      }],
    });
  });

  it('keeps texts as they are, whatever they hold: quotes, non-ASCII, control characters, marker look-alikes', () => {
    const text = 'He said "é – 肺" \\ \u0000abc:0\u0000 \n\t';
    const body = chatRequestBody({ model: 'm', messages: [{ role: 'system', content: text }, { role: 'user', content: [{ type: 'text', text }, { type: 'image_url', png: Buffer.from('png') }] }] });
    const sent = JSON.parse(body.toString('utf8')) as { messages: [{ content: string }, { content: { text?: string; image_url?: { url: string } }[] }] };
    expect(sent.messages[0].content).toBe(text);
    expect(sent.messages[1].content[0]!.text).toBe(text);
    expect(sent.messages[1].content[1]!.image_url!.url).toBe('data:image/png;base64,cG5n');
  });
});

describe('base64Into', () => {
  it('writes what Buffer\'s own base64 encoder gives, for every remainder and at any offset', () => {
    for (const n of [0, 1, 2, 3, 4, 5, 6, 100, 65_537, 300_001]) {
      const src = randomBytes(n);
      const dst = Buffer.alloc(n * 2 + 10, 0x2a);
      const end = base64Into(src, dst, 3);
      expect(dst.subarray(3, end).toString('latin1')).toBe(src.toString('base64'));
      expect(dst[2]).toBe(0x2a);
      expect(dst[end]).toBe(0x2a);
    }
  });
});

describe('BodyBuffers', () => {
  const request = (text: string) => ({ model: 'm', messages: [{ role: 'user' as const, content: [{ type: 'text' as const, text }, { type: 'image_url' as const, png: randomBytes(3000) }] }] });

  it('gives a body of exactly its size, in the memory of one given back when it fits, and fresh memory when none does', () => {
    const bodies = new BodyBuffers(2);
    const first = chatRequestBody(request('a'.repeat(500)), (size) => bodies.take(size));
    expect(JSON.parse(first.toString('utf8'))).toMatchObject({ model: 'm' });
    bodies.give(first);
    // Smaller: the same memory, holding only the new body.
    const second = chatRequestBody(request('short'), (size) => bodies.take(size));
    expect(second.buffer).toBe(first.buffer);
    expect((JSON.parse(second.toString('utf8')) as { messages: [{ content: [{ text: string }] }] }).messages[0].content[0].text).toBe('short');
    // Taken and not given back: the next body has memory of its own.
    const third = bodies.take(10);
    expect(third.buffer).not.toBe(second.buffer);
    expect(third.length).toBe(10);
    // Larger than any idle buffer: fresh memory.
    bodies.give(second);
    expect(bodies.take(first.buffer.byteLength + 1).buffer).not.toBe(second.buffer);
  });

  it('keeps the largest of the bodies given back, up to its number', () => {
    const bodies = new BodyBuffers(2);
    const [small, middle, large] = [1000, 2000, 3000].map((n) => bodies.take(n));
    for (const b of [large!, small!, middle!]) bodies.give(b);
    expect(bodies.take(1).buffer).toBe(middle!.buffer);
    expect(bodies.take(1).buffer).toBe(large!.buffer);
    expect(bodies.take(1).buffer).not.toBe(small!.buffer);
  });
});
