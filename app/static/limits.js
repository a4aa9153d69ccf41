// The server's limits and defaults as this page got them: data-* attributes on <body>, written by
// app/routes/pages.py from model/limits.py and the server's settings.  No limit is typed here.
//
//   const limits = readLimits();   limits.maxPromptChars, limits.columns.max, ...
//   rangeOf(form.elements.top_p)   // {min, max} from the control's own attributes

/** The page's limits, as numbers (the seed bound as a BigInt: it is past 2^53). */
export function readLimits(body = document.body) {
  const data = body.dataset;
  return Object.freeze({
    maxPromptChars: Number(data.maxPromptChars),
    maxScoreChars: Number(data.maxScoreChars), // Read the model: longest text to read
    maxTemperature: Number(data.maxTemperature),
    alternatives: Number(data.alternatives), // top-N chars a tooltip lists
    maxSeed: BigInt(data.maxSeed), // exclusive
    columns: Object.freeze({ min: Number(data.minColumns), max: Number(data.maxColumns) }),
    defaultModel: data.defaultModel ?? "",
  });
}

/** A number control's range, as the server rendered its min and max attributes. */
export function rangeOf(input) {
  return { min: Number(input.min), max: Number(input.max) };
}
