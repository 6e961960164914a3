/**
 * Reporting: SVG line plots of training curves, Markdown tables, and number formatting.
 * @module
 */
export * from "./format.ts";
export * from "./markdown_table.ts";
export * from "./svg_plot.ts";
