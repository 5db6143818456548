/** The CLI's error: a message for the user and the exit code (2 bad input, 1 everything else), with its cause. */
export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Bad input: a file, flag or field the user can fix. */
export const usageError = (message: string, options?: ErrorOptions): CliError => new CliError(message, 2, options);
