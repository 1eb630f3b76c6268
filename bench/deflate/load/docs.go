package main

import (
	"math/rand/v2"
	"strconv"
)

// docSize is the size of every message: a 16 KiB JSON document.
const docSize = 16 << 10

var (
	words = []string{
		"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
		"kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
		"uniform", "victor", "whiskey", "xray", "yankee", "zulu", "order", "invoice", "shipment",
		"customer", "account", "payment", "refund", "pending", "settled", "warehouse", "berlin",
		"paris", "tokyo", "lagos", "lima", "quito", "oslo", "cairo", "delhi", "seoul", "the", "a",
		"of", "and", "to", "in", "is", "was", "for", "on", "with", "as", "by", "at", "from",
		"update", "delivery", "late", "early", "signed", "returned", "damaged", "express", "ground",
		"priority", "standard", "north", "south", "east", "west", "central", "blue", "green", "red",
	}
	tags     = []string{"news", "sports", "tech", "finance", "travel", "food", "music", "health", "retail", "b2b"}
	statuses = []string{"new", "paid", "shipped", "delivered", "cancelled", "refunded"}
)

// makeDocs returns n deterministic, different JSON documents of exactly
// docSize bytes each: an array of order-like records with ids, names,
// timestamps, numbers and a few words of free text, which deflate compresses
// about 3x at level 1 without context.
func makeDocs(n int) [][]byte {
	docs := make([][]byte, n)
	for i := range docs {
		docs[i] = makeDoc(rand.New(rand.NewPCG(1, uint64(i))))
	}
	return docs
}

func makeDoc(r *rand.Rand) []byte {
	b := make([]byte, 0, docSize+512)
	b = append(b, '[')
	for {
		rec := record(r, nil)
		if len(b)+len(rec)+64 > docSize {
			break
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, rec...)
	}
	// Fill the rest with one record of free text, so the document is
	// exactly docSize bytes and still JSON.
	b = append(b, `,{"note":"`...)
	for len(b) < docSize-3 {
		b = append(b, words[r.IntN(len(words))]...)
		b = append(b, ' ')
	}
	return append(b[:docSize-3], `"}]`...)
}

func record(r *rand.Rand, b []byte) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendUint(b, r.Uint64N(1e9), 10)
	b = append(b, `,"customer":"`...)
	b = append(b, words[r.IntN(len(words))]...)
	b = append(b, '_')
	b = strconv.AppendUint(b, r.Uint64N(1e5), 10)
	b = append(b, `","ref":"`...)
	b = strconv.AppendUint(b, r.Uint64(), 36)
	b = append(b, `","created":"2025-`...)
	b = append(b, byte('0'+r.IntN(2)), byte('1'+r.IntN(9)), '-', byte('0'+r.IntN(3)), byte('1'+r.IntN(9)), 'T')
	b = append(b, byte('0'+r.IntN(2)), byte('0'+r.IntN(10)), ':', byte('0'+r.IntN(6)), byte('0'+r.IntN(10)), ':', byte('0'+r.IntN(6)), byte('0'+r.IntN(10)))
	b = append(b, `Z","status":"`...)
	b = append(b, statuses[r.IntN(len(statuses))]...)
	b = append(b, `","total":`...)
	b = strconv.AppendFloat(b, float64(r.IntN(1e6))/100, 'f', 2, 64)
	b = append(b, `,"items":`...)
	b = strconv.AppendInt(b, int64(1+r.IntN(20)), 10)
	b = append(b, `,"tags":["`...)
	b = append(b, tags[r.IntN(len(tags))]...)
	b = append(b, `","`...)
	b = append(b, tags[r.IntN(len(tags))]...)
	b = append(b, `"],"text":"`...)
	for i := range 3 + r.IntN(6) {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, words[r.IntN(len(words))]...)
	}
	return append(b, `"}`...)
}
