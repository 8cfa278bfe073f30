// Package redisbuy is the ticket sale's protocol on a Redis server, apart
// from any client library: the Lua scripts (buy, init), the purchase
// with its exactly-once retries, Remaining, Audit, and what each failure
// means. ticketshm/redisstore, the public package, runs it over go-redis;
// internal/backend runs it over internal/resp for the bench, whose
// processes must not link package net. Both speak through Client, a
// handful of commands and a Classify that says what an error means for
// the request that failed; everything else, the protocol itself, is one
// copy here, so the bench measures the purchase users get.
//
// The layout of the counter, the scripts, and the guarantees are written
// down in ticketshm/redisstore's doc, the one users read. Errors keep
// that package's prefix ("redisstore: ...") and are its sentinels.
//
// # Failures
//
// A purchase is retried while the failure may be temporary and the
// context allows. What the retry may do depends on whether the request
// reached the server, which only the client can tell, hence Classify:
//
//	Interrupted  the call's context ended during it     maybe sent, give up
//	Replied      the server answered with an error      not run, give up (LOADING, BUSY, OOM... retry)
//	Closed       the client's owner closed it           not sent, give up
//	DialFailed   no connection could be made            not sent, retry
//	NotSent      no connection free, or similar         not sent, retry
//	Broken       the connection broke mid-call          maybe sent, retry
//	Unknown      anything else                          maybe sent, give up
//
// A client that sends a request again by itself (Client.Resends:
// go-redis with its retries on) reports only the last attempt's failure,
// so every failure of its purchase is "maybe sent": a Buy through it that
// gives up is uncertain, never ErrUnavailable.
//
// A purchase that may have been sent and was not answered stays pending
// on its Store (an *UncertainError), and is sent again, same id, by the
// Store's next Buy: the server recognises it and returns its ticket.
package redisbuy
