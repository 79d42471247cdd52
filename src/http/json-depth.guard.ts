import type { NextFunction, Request, Response } from 'express';

/** Deeper than any real request, shallow enough that recursive validators further on cannot blow the stack. */
export const MAX_JSON_DEPTH = 2_000;

/** Depth of a parsed JSON value, walked iteratively (a recursive walk is what this protects against). */
export function jsonDepth(value: unknown, limit = MAX_JSON_DEPTH): number {
  let max = 0;
  const stack: { node: unknown; depth: number }[] = [{ node: value, depth: 0 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    const level = depth + 1;
    if (level > max) max = level;
    if (max > limit) return max;
    for (const child of Object.values(node as Record<string, unknown>)) stack.push({ node: child, depth: level });
  }
  return max;
}

/** Express middleware run right after the JSON body parser: absurdly nested bodies are a 400, not a stack overflow. */
export function rejectDeepJson(req: Request, res: Response, next: NextFunction): void {
  if (jsonDepth(req.body) > MAX_JSON_DEPTH) {
    res.status(400).json({
      statusCode: 400,
      error: 'bad_request',
      message: `Request body is nested deeper than ${MAX_JSON_DEPTH} levels.`,
      field: 'body',
    });
    return;
  }
  next();
}
