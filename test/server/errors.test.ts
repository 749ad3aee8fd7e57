/** Unit tests of the one error table and of request validation (no model needed). */
import { describe, expect, it } from 'vitest';
import { ApiError, ERROR_TABLE, toHttpError } from '../../src/http/errors.js';
import { parseChatRequest, parseCompletionRequest, parseTokenizeRequest } from '../../src/server/requests.js';
import { BudgetExceededError, RateLimitError } from '../../src/usage/index.js';
import { ContextLengthError, TokmeterTypeError } from '../../src/errors.js';
import { QueueFullError } from '../../src/model/index.js';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('toHttpError', () => {
  it('maps the metering refusals to their status, type, code and Retry-After', () => {
    const ctx = toHttpError(
      new ContextLengthError('ERR_CONTEXT_LENGTH', 'request needs 3000 tokens, over the context length of 2048', {
        promptTokens: 2000,
        contextLength: 2048,
      }),
      'prompt',
    );
    expect(ctx.status).toBe(400);
    expect(ctx.body.error).toMatchObject({
      type: 'invalid_request_error',
      code: 'context_length_exceeded',
      param: 'prompt',
    });
    expect(ctx.body.error.message).toContain('2048');

    const rpm = toHttpError(new RateLimitError('acme', 'rpm', 1500, 'too many'));
    expect(rpm.status).toBe(429);
    expect(rpm.headers).toEqual({ 'retry-after': '2', 'retry-after-ms': '1500' });
    expect(rpm.body.error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded', message: 'too many' });

    const never = toHttpError(new RateLimitError('acme', 'tpm', Infinity, 'never fits'));
    expect(never.status).toBe(429);
    expect(never.headers).toEqual({}); // retrying cannot help: no Retry-After
    expect(never.body.error.type).toBe('tokens');

    const resetsAt = Date.now() + 90_000;
    const budget = toHttpError(new BudgetExceededError('acme', 'day', 5n, 10n, 6n, resetsAt));
    expect(budget.status).toBe(429);
    expect(budget.body.error.code).toBe('insufficient_quota');
    expect(Number(budget.headers['retry-after'])).toBeGreaterThanOrEqual(89);
    expect(Number(budget.headers['retry-after'])).toBeLessThanOrEqual(90);
  });

  it('maps server errors, fastify body errors and argument errors', () => {
    expect(toHttpError(new ApiError('ERR_INVALID_API_KEY', 'invalid API key')).status).toBe(401);
    const p = toHttpError(new ApiError('ERR_UNKNOWN_PARAMETER', "unknown parameter 'foo'", 'foo'));
    expect(p).toMatchObject({ status: 400, body: { error: { param: 'foo', code: 'unknown_parameter' } } });
    const big = Object.assign(new Error('Request body is too large'), {
      code: 'FST_ERR_CTP_BODY_TOO_LARGE',
      statusCode: 413,
    });
    expect(toHttpError(big)).toMatchObject({ status: 413, body: { error: { code: 'request_too_large' } } });
    expect(toHttpError(new TokmeterTypeError('expected x')).status).toBe(400);
    expect(toHttpError(new ApiError('ERR_OVERLOADED', 'busy', null, 1000)).headers['retry-after']).toBe('1');
    const full = toHttpError(new QueueFullError('ERR_QUEUE_FULL', 'the queue of tiny is full (2 waiting)'));
    expect(full).toMatchObject({ status: 503, headers: { 'retry-after': '1', 'retry-after-ms': '1000' } });
    expect(full.body.error.code).toBe('server_overloaded');
  });

  it('hides the message of unexpected errors behind a 500', () => {
    const h = toHttpError(new Error('secret path /etc/x'));
    expect(h.status).toBe(500);
    expect(h.body.error.type).toBe('server_error');
    expect(h.body.error.message).not.toContain('/etc/x');
    expect(toHttpError(Object.assign(new Error('no price'), { code: 'ERR_PRICE' })).status).toBe(500);
  });

  it('has an OpenAI type and a status for every entry', () => {
    for (const [code, e] of Object.entries(ERROR_TABLE)) {
      expect(e.status, code).toBeGreaterThanOrEqual(400);
      expect(e.type, code).toMatch(/^[a-z_]+$/);
    }
  });
});

describe('request validation', () => {
  const chat = { model: 'tiny', messages: [{ role: 'user', content: 'hi' }] };

  it('parses a chat request with every supported field', () => {
    const r = parseChatRequest({
      ...chat,
      max_completion_tokens: 5,
      temperature: 0.5,
      top_p: 0.9,
      seed: 3,
      stop: 'x',
      n: 1,
      stream: true,
      stream_options: { include_usage: true },
      user: 'u',
      presence_penalty: 0,
      frequency_penalty: -0.5,
      top_k: 5,
      min_p: 0.1,
      repetition_penalty: 1.2,
      logit_bias: {},
    });
    expect(r).toMatchObject({
      maxTokens: 5,
      temperature: 0.5,
      topP: 0.9,
      seed: 3,
      stop: ['x'],
      samplers: { presencePenalty: 0, frequencyPenalty: -0.5, topK: 5, minP: 0.1, repetitionPenalty: 1.2 },
      stream: true,
      includeUsage: true,
    });
    // The messages use the API's field names and the option table's bounds.
    expect(() => parseChatRequest({ ...chat, temperature: 3 })).toThrow(
      "expected a number in [0, 2] for 'temperature', got 3",
    );
    expect(r.input).toEqual({ messages: [{ role: 'user', content: 'hi' }] });
  });

  it('names the field of every unknown, ill-typed or unsupported parameter', () => {
    const cases: [unknown, string, string][] = [
      [{ ...chat, temperature: 'hot' }, 'temperature', 'ERR_INVALID_REQUEST'],
      [{ ...chat, max_tokens: 1.5 }, 'max_tokens', 'ERR_INVALID_REQUEST'],
      [{ ...chat, max_tokens: 0 }, 'max_tokens', 'ERR_INVALID_REQUEST'],
      [{ ...chat, n: 9 }, 'n', 'ERR_UNSUPPORTED_PARAMETER'],
      [{ ...chat, tools: [{ type: 'function' }] }, 'tools[0].function', 'ERR_INVALID_REQUEST'],
      [{ ...chat, tools: [{ type: 'web_search' }] }, 'tools[0].type', 'ERR_UNSUPPORTED_PARAMETER'],
      [{ ...chat, tool_choice: 'required' }, 'tool_choice', 'ERR_INVALID_REQUEST'],
      [
        { ...chat, response_format: { type: 'json_schema', json_schema: { name: 'x' } } },
        'response_format.json_schema.schema',
        'ERR_INVALID_REQUEST',
      ],
      [{ ...chat, guided_choice: [] }, 'guided_choice', 'ERR_INVALID_REQUEST'],
      [{ ...chat, guided_grammar: 'root ::= "a"' }, 'guided_grammar', 'ERR_UNSUPPORTED_PARAMETER'],
      [{ ...chat, guided_regex: 'a', guided_choice: ['a'] }, 'guided_choice', 'ERR_INVALID_REQUEST'],
      [{ ...chat, messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].tool_call_id', 'ERR_INVALID_REQUEST'],
      [
        { ...chat, messages: [{ role: 'user', content: 'x', tool_calls: [] }] },
        'messages[0].tool_calls',
        'ERR_INVALID_REQUEST',
      ],
      [{ ...chat, functions: [] }, 'functions', 'ERR_UNSUPPORTED_PARAMETER'],
      [{ ...chat, presence_penalty: 2.5 }, 'presence_penalty', 'ERR_INVALID_REQUEST'],
      [{ ...chat, top_k: -1 }, 'top_k', 'ERR_INVALID_REQUEST'],
      [{ ...chat, logit_bias: { 5: 101 } }, 'logit_bias.5', 'ERR_INVALID_REQUEST'],
      [{ ...chat, logit_bias: { x5: 10 } }, 'logit_bias', 'ERR_INVALID_REQUEST'],
      [{ ...chat, logit_bias: { 5: -100.5 } }, 'logit_bias.5', 'ERR_INVALID_REQUEST'],
      [{ ...chat, stream_options: { include_usage: true } }, 'stream_options', 'ERR_INVALID_REQUEST'],
      [{ ...chat, stream: true, stream_options: { include_usage: 1 } }, 'include_usage', 'ERR_INVALID_REQUEST'],
      [{ ...chat, stop: ['a', ''] }, 'stop[1]', 'ERR_INVALID_REQUEST'],
      [{ ...chat, messages: [{ role: 'user', content: 'x', extra: 1 }] }, 'messages[0].extra', 'ERR_UNKNOWN_PARAMETER'],
      [{ ...chat, messages: [{ role: 'robot', content: 'x' }] }, 'messages[0].role', 'ERR_INVALID_REQUEST'],
      [{ ...chat, messages: [] }, 'messages', 'ERR_INVALID_REQUEST'],
      [{ ...chat, max_tokens: 4, max_completion_tokens: 5 }, 'max_completion_tokens', 'ERR_INVALID_REQUEST'],
      [{ messages: chat.messages }, 'model', 'ERR_INVALID_REQUEST'],
    ];
    for (const [body, param, code] of cases) {
      const err = thrown(() => parseChatRequest(body)) as ApiError;
      expect(err, JSON.stringify(body)).toBeInstanceOf(ApiError);
      expect({ param: err.param, code: err.code }, JSON.stringify(body)).toEqual({ param, code });
    }
    expect((thrown(() => parseCompletionRequest({ model: 'tiny', prompt: [1, 2] })) as ApiError).param).toBe('prompt');
    expect((thrown(() => parseCompletionRequest({ model: 'tiny', prompt: 'a', echo: true })) as ApiError).param).toBe(
      'echo',
    );
    expect((thrown(() => parseTokenizeRequest({ prompt: 'a', messages: [] })) as ApiError).param).toBe('prompt');
  });

  it('joins text content parts and refuses other parts', () => {
    const r = parseChatRequest({
      model: 'tiny',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'a' },
            { type: 'text', text: 'b' },
          ],
        },
      ],
    });
    expect(r.input).toEqual({ messages: [{ role: 'user', content: 'ab' }] });
    const err = thrown(() =>
      parseChatRequest({
        model: 'tiny',
        messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }],
      }),
    ) as ApiError;
    expect({ code: err.code, param: err.param }).toEqual({
      code: 'ERR_UNSUPPORTED_PARAMETER',
      param: 'messages[0].content[0].type',
    });
  });
});
