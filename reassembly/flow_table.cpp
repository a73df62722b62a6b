#include "reassembly/flow_table.h"

#include <new>

namespace sluice::reassembly {

FlowKey make_flow_key(const PacketInfo& info, bool& src_is_lo) noexcept {
  FlowKey k;
  std::memset(&k, 0, sizeof(k));
  const std::size_t alen = info.ip_version == 6 ? 16 : 4;
  const int c = std::memcmp(info.src_addr, info.dst_addr, alen);
  src_is_lo = c < 0 || (c == 0 && info.src_port <= info.dst_port);
  const uint8_t* lo = src_is_lo ? info.src_addr : info.dst_addr;
  const uint8_t* hi = src_is_lo ? info.dst_addr : info.src_addr;
  std::memcpy(k.addr_lo, lo, alen);
  std::memcpy(k.addr_hi, hi, alen);
  k.port_lo = src_is_lo ? info.src_port : info.dst_port;
  k.port_hi = src_is_lo ? info.dst_port : info.src_port;
  k.ip_version = info.ip_version;
  k.proto = info.l4_proto;
  return k;
}

FlowTable::FlowTable(std::size_t capacity) : capacity_(capacity) {
  // Entries are handed out in order until all have been used once, then from the free list, so
  // the table's pages are touched only as flows arrive.
  entries_ = new Flow[capacity];
  std::size_t buckets = 1;
  while (buckets < capacity * 2) buckets <<= 1;  // load factor at most 0.5
  buckets_ = new Flow*[buckets]();
  bucket_mask_ = buckets - 1;
  free_list_ = nullptr;
}

FlowTable::~FlowTable() {
  delete[] entries_;
  delete[] buckets_;
}

Flow* FlowTable::find(const FlowKey& key, uint32_t hash) noexcept {
  for (Flow* f = buckets_[hash & bucket_mask_]; f; f = f->bucket_next)
    if (f->hash == hash && f->key == key) return f;
  return nullptr;
}

Flow* FlowTable::insert(const FlowKey& key, uint32_t hash) noexcept {
  Flow* f = free_list_;
  if (f) {
    free_list_ = f->bucket_next;
  } else if (untouched_ < capacity_) {
    f = &entries_[untouched_++];
  } else {
    return nullptr;
  }
  *f = Flow{};
  f->key = key;
  f->hash = hash;
  f->embryonic = true;
  Flow*& bucket = buckets_[hash & bucket_mask_];
  f->bucket_next = bucket;
  bucket = f;
  lru_append(f);
  ++size_;
  return f;
}

void FlowTable::remove(Flow* f) noexcept {
  Flow** p = &buckets_[f->hash & bucket_mask_];
  while (*p && *p != f) p = &(*p)->bucket_next;
  if (*p) *p = f->bucket_next;
  lru_unlink(f);
  f->bucket_next = free_list_;
  free_list_ = f;
  --size_;
}

void FlowTable::touch(Flow* f) noexcept {
  if (lru_[f->embryonic ? kEmbryonic : kActive].tail == f) return;
  lru_unlink(f);
  lru_append(f);
}

void FlowTable::activate(Flow* f) noexcept {
  if (!f->embryonic) return touch(f);
  lru_unlink(f);
  f->embryonic = false;
  lru_append(f);
}

void FlowTable::lru_unlink(Flow* f) noexcept {
  Lru& l = lru_[f->embryonic ? kEmbryonic : kActive];
  (f->lru_prev ? f->lru_prev->lru_next : l.head) = f->lru_next;
  (f->lru_next ? f->lru_next->lru_prev : l.tail) = f->lru_prev;
  f->lru_prev = f->lru_next = nullptr;
  --l.size;
}

void FlowTable::lru_append(Flow* f) noexcept {
  Lru& l = lru_[f->embryonic ? kEmbryonic : kActive];
  f->lru_prev = l.tail;
  f->lru_next = nullptr;
  (l.tail ? l.tail->lru_next : l.head) = f;
  l.tail = f;
  ++l.size;
}

}  // namespace sluice::reassembly
