// Package ticketshm will hold the ticket counter of the course notes' ticket
// grab in a shared-memory segment (locked and lock-free modes) and the Store
// interface every backend implements. Not built yet.
package ticketshm
