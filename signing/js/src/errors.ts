/** Base class of every error thrown by @imago/signing. */
export class ImagoError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImagoError";
  }
}

/**
 * An option (or another builder input such as `source`, `extension`, key material)
 * failed validation. `option` is the JSON key (e.g. `"width"`, `"resize"`);
 * the message names the exact sub-path (e.g. `resize.width`).
 */
export class ImagoOptionError extends ImagoError {
  readonly option: string;
  constructor(option: string, message: string) {
    super(message);
    this.name = "ImagoOptionError";
    this.option = option;
  }
}

/** Error codes a server answers for URL problems (SPEC §8). */
export type ImagoUrlErrorCode =
  | "invalid-option"
  | "unknown-option"
  | "invalid-source"
  | "invalid-signature"
  | "url-expired";

const STATUS: Record<ImagoUrlErrorCode, number> = {
  "invalid-option": 400,
  "unknown-option": 400,
  "invalid-source": 400,
  "invalid-signature": 403,
  "url-expired": 410,
};

/** Raised by `parsePath` / `verifyUrlPath`; mirrors the server's answer. */
export class ImagoParseError extends ImagoError {
  readonly code: ImagoUrlErrorCode;
  /** HTTP status the server answers for this error. */
  readonly status: number;
  /** Option name exactly as written in the path, when the error is about one option. */
  readonly option: string | undefined;
  constructor(code: ImagoUrlErrorCode, message: string, option?: string) {
    super(message);
    this.name = "ImagoParseError";
    this.code = code;
    this.status = STATUS[code];
    this.option = option;
  }
}

/** A JSON error answered by the imago HTTP API (`{code, message}`). */
export class ImagoApiError extends ImagoError {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "ImagoApiError";
    this.status = status;
    this.code = code;
  }
}

/** Upload of the file itself failed (network error, non-2xx from storage). */
export class ImagoUploadError extends ImagoError {
  /** HTTP status of the last attempt, 0 for a network error. */
  readonly status: number;
  readonly attempts: number;
  constructor(message: string, status: number, attempts: number) {
    super(message);
    this.name = "ImagoUploadError";
    this.status = status;
    this.attempts = attempts;
  }
}
