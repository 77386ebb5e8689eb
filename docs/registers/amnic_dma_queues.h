/* dma_queues register block: generated from its description; do not edit. */
#ifndef AMNIC_DMA_QUEUES_H
#define AMNIC_DMA_QUEUES_H

#define AMNIC_DMA_QUEUES_TYPE_ID_VALUE                   0x444D4151u
#define AMNIC_DMA_QUEUES_VERSION_VALUE                   0x00010000u
#define AMNIC_DMA_QUEUES_SIZE_VALUE                      0x80u

#define AMNIC_DMA_QUEUES_TYPE_ID_OFFSET                  0x000u  /* RO, 32 bit */
#define AMNIC_DMA_QUEUES_TYPE_ID_RESET                   0x444D4151u
#define AMNIC_DMA_QUEUES_VERSION_OFFSET                  0x004u  /* RO, 32 bit */
#define AMNIC_DMA_QUEUES_VERSION_RESET                   0x10000u
#define AMNIC_DMA_QUEUES_SIZE_OFFSET                     0x008u  /* RO, 32 bit */
#define AMNIC_DMA_QUEUES_SIZE_RESET                      0x80u
#define AMNIC_DMA_QUEUES_TX_QUEUES_OFFSET                0x00Cu  /* RO, 32 bit */
#define AMNIC_DMA_QUEUES_TX_QUEUES_RESET                 0x0u
#define AMNIC_DMA_QUEUES_RX_QUEUES_OFFSET                0x010u  /* RO, 32 bit */
#define AMNIC_DMA_QUEUES_RX_QUEUES_RESET                 0x0u
#define AMNIC_DMA_QUEUES_COMPLETION_QUEUES_OFFSET        0x014u  /* RO, 32 bit */
#define AMNIC_DMA_QUEUES_COMPLETION_QUEUES_RESET         0x0u
#define AMNIC_DMA_QUEUES_QUEUE_SELECT_OFFSET             0x018u  /* RW, 32 bit */
#define AMNIC_DMA_QUEUES_QUEUE_SELECT_RESET              0x0u
#define AMNIC_DMA_QUEUES_QUEUE_SELECT_INDEX_SHIFT        0
#define AMNIC_DMA_QUEUES_QUEUE_SELECT_INDEX_MASK         0xFFFFu
#define AMNIC_DMA_QUEUES_QUEUE_SELECT_KIND_SHIFT         16
#define AMNIC_DMA_QUEUES_QUEUE_SELECT_KIND_MASK          0x30000u
#define AMNIC_DMA_QUEUES_COMMAND_OFFSET                  0x01Cu  /* W1S, 32 bit */
#define AMNIC_DMA_QUEUES_COMMAND_RESET                   0x0u
#define AMNIC_DMA_QUEUES_COMMAND_WRITE_SHIFT             0
#define AMNIC_DMA_QUEUES_COMMAND_WRITE_MASK              0x1u
#define AMNIC_DMA_QUEUES_COMMAND_READ_SHIFT              1
#define AMNIC_DMA_QUEUES_COMMAND_READ_MASK               0x2u
#define AMNIC_DMA_QUEUES_BASE_OFFSET                     0x020u  /* RW, 64 bit */
#define AMNIC_DMA_QUEUES_BASE_HI_OFFSET                  0x024u
#define AMNIC_DMA_QUEUES_BASE_RESET                      0x0ull
#define AMNIC_DMA_QUEUES_CONFIG_OFFSET                   0x028u  /* RW, 32 bit */
#define AMNIC_DMA_QUEUES_CONFIG_RESET                    0x0u
#define AMNIC_DMA_QUEUES_CONFIG_LOG_SIZE_SHIFT           0
#define AMNIC_DMA_QUEUES_CONFIG_LOG_SIZE_MASK            0xFu
#define AMNIC_DMA_QUEUES_CONFIG_ENABLE_SHIFT             4
#define AMNIC_DMA_QUEUES_CONFIG_ENABLE_MASK              0x10u
#define AMNIC_DMA_QUEUES_CONFIG_WEIGHT_SHIFT             8
#define AMNIC_DMA_QUEUES_CONFIG_WEIGHT_MASK              0xFF00u
#define AMNIC_DMA_QUEUES_CONFIG_CQ_SHIFT                 16
#define AMNIC_DMA_QUEUES_CONFIG_CQ_MASK                  0xFFFF0000u
#define AMNIC_DMA_QUEUES_PRODUCER_OFFSET                 0x02Cu  /* RW, 32 bit */
#define AMNIC_DMA_QUEUES_PRODUCER_RESET                  0x0u
#define AMNIC_DMA_QUEUES_PRODUCER_INDEX_SHIFT            0
#define AMNIC_DMA_QUEUES_PRODUCER_INDEX_MASK             0xFFFFu
#define AMNIC_DMA_QUEUES_CONSUMER_OFFSET                 0x030u  /* RW, 32 bit */
#define AMNIC_DMA_QUEUES_CONSUMER_RESET                  0x0u
#define AMNIC_DMA_QUEUES_CONSUMER_INDEX_SHIFT            0
#define AMNIC_DMA_QUEUES_CONSUMER_INDEX_MASK             0xFFFFu
#define AMNIC_DMA_QUEUES_ERROR_OFFSET                    0x034u  /* RO, 32 bit */
#define AMNIC_DMA_QUEUES_ERROR_RESET                     0x0u
#define AMNIC_DMA_QUEUES_ERROR_CODE_SHIFT                0
#define AMNIC_DMA_QUEUES_ERROR_CODE_MASK                 0x3u
#define AMNIC_DMA_QUEUES_PACKETS_OFFSET                  0x038u  /* RO, 64 bit */
#define AMNIC_DMA_QUEUES_PACKETS_HI_OFFSET               0x03Cu
#define AMNIC_DMA_QUEUES_PACKETS_RESET                   0x0ull
#define AMNIC_DMA_QUEUES_BYTES_OFFSET                    0x040u  /* RO, 64 bit */
#define AMNIC_DMA_QUEUES_BYTES_HI_OFFSET                 0x044u
#define AMNIC_DMA_QUEUES_BYTES_RESET                     0x0ull
#define AMNIC_DMA_QUEUES_DROPS_OFFSET                    0x048u  /* RO, 64 bit */
#define AMNIC_DMA_QUEUES_DROPS_HI_OFFSET                 0x04Cu
#define AMNIC_DMA_QUEUES_DROPS_RESET                     0x0ull
#define AMNIC_DMA_QUEUES_TX_DOORBELL_OFFSET              0x050u  /* WO, 32 bit */
#define AMNIC_DMA_QUEUES_TX_DOORBELL_RESET               0x0u
#define AMNIC_DMA_QUEUES_TX_DOORBELL_INDEX_SHIFT         0
#define AMNIC_DMA_QUEUES_TX_DOORBELL_INDEX_MASK          0xFFFFu
#define AMNIC_DMA_QUEUES_TX_DOORBELL_QUEUE_SHIFT         16
#define AMNIC_DMA_QUEUES_TX_DOORBELL_QUEUE_MASK          0xFFFF0000u
#define AMNIC_DMA_QUEUES_RX_DOORBELL_OFFSET              0x054u  /* WO, 32 bit */
#define AMNIC_DMA_QUEUES_RX_DOORBELL_RESET               0x0u
#define AMNIC_DMA_QUEUES_RX_DOORBELL_INDEX_SHIFT         0
#define AMNIC_DMA_QUEUES_RX_DOORBELL_INDEX_MASK          0xFFFFu
#define AMNIC_DMA_QUEUES_RX_DOORBELL_QUEUE_SHIFT         16
#define AMNIC_DMA_QUEUES_RX_DOORBELL_QUEUE_MASK          0xFFFF0000u
#define AMNIC_DMA_QUEUES_CQ_DOORBELL_OFFSET              0x058u  /* WO, 32 bit */
#define AMNIC_DMA_QUEUES_CQ_DOORBELL_RESET               0x0u
#define AMNIC_DMA_QUEUES_CQ_DOORBELL_INDEX_SHIFT         0
#define AMNIC_DMA_QUEUES_CQ_DOORBELL_INDEX_MASK          0xFFFFu
#define AMNIC_DMA_QUEUES_CQ_DOORBELL_QUEUE_SHIFT         16
#define AMNIC_DMA_QUEUES_CQ_DOORBELL_QUEUE_MASK          0xFFFF0000u
#define AMNIC_DMA_QUEUES_BAD_DOORBELLS_OFFSET            0x05Cu  /* RO, 32 bit */
#define AMNIC_DMA_QUEUES_BAD_DOORBELLS_RESET             0x0u
#define AMNIC_DMA_QUEUES_LOST_DOORBELLS_OFFSET           0x060u  /* RO, 32 bit */
#define AMNIC_DMA_QUEUES_LOST_DOORBELLS_RESET            0x0u
#define AMNIC_DMA_QUEUES_RX_UNQUEUED_DROPS_OFFSET        0x064u  /* RO, 32 bit */
#define AMNIC_DMA_QUEUES_RX_UNQUEUED_DROPS_RESET         0x0u
#define AMNIC_DMA_QUEUES_CQ_UNQUEUED_DROPS_OFFSET        0x068u  /* RO, 32 bit */
#define AMNIC_DMA_QUEUES_CQ_UNQUEUED_DROPS_RESET         0x0u
#define AMNIC_DMA_QUEUES_RX_BAD_DROPS_OFFSET             0x06Cu  /* RO, 32 bit */
#define AMNIC_DMA_QUEUES_RX_BAD_DROPS_RESET              0x0u

#endif /* AMNIC_DMA_QUEUES_H */
