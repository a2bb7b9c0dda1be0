//! OpenAI Responses (`/v1/responses`): a client format. To a channel with the Responses API it
//! is passed through (only the usage and text are read: [`upstream_answer`]); to a chat-only
//! channel it is converted through the model ([`client_request`] in, [`client_answer`] out).
//! Sluice never sends a converted request in this format, so it has no upstream request
//! encoder.

pub mod client_answer;
pub mod client_request;
pub mod client_stream;
pub mod upstream_answer;

#[cfg(test)]
mod tests;
