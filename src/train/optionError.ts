/** An option value outside its range (the message names the option and the range). */
export class OptionError extends Error {
  override name = 'OptionError';
}
