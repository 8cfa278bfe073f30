#include "textflag.h"

// func release32(w *atomic.Uint32, v uint32)
TEXT ·release32(SB), NOSPLIT, $0-12
	MOVQ w+0(FP), AX
	MOVL v+8(FP), BX
	MOVL BX, (AX)
	RET

// func release64(w *atomic.Uint64, v uint64)
TEXT ·release64(SB), NOSPLIT, $0-16
	MOVQ w+0(FP), AX
	MOVQ v+8(FP), BX
	MOVQ BX, (AX)
	RET

// func fillCell(c *atomic.Uint64, msg []byte, w uint64, lane *atomic.Uint64)
//
// A small message's whole publish in one call: the length at c+8, the
// message at c+16 (16 bytes a move, then byte by byte), the word w at c
// (the publish), then 0 into the producer's lane (its intent cleared):
// plain stores, in this order (TSO keeps it for the other processes).
TEXT ·fillCell(SB), NOSPLIT, $0-48
	MOVQ c+0(FP), DI
	MOVQ msg_base+8(FP), SI
	MOVQ msg_len+16(FP), CX
	MOVL CX, 8(DI)
	LEAQ 16(DI), DX
loop16:
	CMPQ CX, $16
	JB   tail
	MOVOU (SI), X0
	MOVOU X0, (DX)
	ADDQ $16, SI
	ADDQ $16, DX
	SUBQ $16, CX
	JMP  loop16
tail:
	TESTQ CX, CX
	JZ   publish
	MOVB (SI), AX
	MOVB AX, (DX)
	INCQ SI
	INCQ DX
	DECQ CX
	JMP  tail
publish:
	MOVQ w+32(FP), AX
	MOVQ AX, (DI)
	MOVQ lane+40(FP), BX
	MOVQ $0, (BX)
	RET
