/** The little XML an SVG writer needs. */

/** Text with &, <, >, " and ' escaped. */
export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
